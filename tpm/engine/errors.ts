/**
 * Typed errors for a failed ESYS call: the TPM's own response codes (layer 0) become
 * TPM_RC errors with the decoded name, every other layer a TPM_TSS error named after the
 * tpm2-tss constant (TSS2_ESYS_RC_BAD_SEQUENCE, TSS2_TCTI_RC_IO_ERROR, ...).
 */
import { SextantError } from '../../lib/errors.js';
import { rcLayer, tssRcName } from './tss-rc.js';

const TCTI_LAYER = 10;
/** TSS2_BASE_RC_NO_CONNECTION, TSS2_BASE_RC_IO_ERROR. */
const UNREACHABLE_BASES = new Set([8, 10]);

/** A tpm2-tss layer failure (not the TPM's answer). */
export class TssError extends SextantError {
  readonly rc: number;
  readonly rcName: string;

  constructor(fn: string, rc: number) {
    const rcName = tssRcName(rc);
    // A TCTI that cannot reach the TPM is "no TPM here", not a software fault.
    const unreachable = rcLayer(rc) === TCTI_LAYER && UNREACHABLE_BASES.has(rc & 0xffff);
    super({ code: unreachable ? 'TPM_UNAVAILABLE' : 'TPM_TSS', message: `${fn}: ${rcName} (0x${rc.toString(16)})` });
    this.name = 'TssError';
    this.rc = rc;
    this.rcName = rcName;
  }
}

/** The TPM's own error answer (layer 0). */
export class TpmResponseError extends SextantError {
  readonly rc: number;

  constructor(fn: string, rc: number) {
    super({ code: 'TPM_RC', message: `${fn}: TPM response code 0x${rc.toString(16)}` });
    this.name = 'TpmResponseError';
    this.rc = rc;
  }
}

/** The error for a non-zero TSS2_RC returned by `fn`. */
export function esysError(fn: string, rc: number): SextantError {
  return rcLayer(rc) === 0 ? new TpmResponseError(fn, rc) : new TssError(fn, rc);
}
