/**
 * Typed errors for a failed TCTI call: TPM-format codes become TpmResponseError (tpm/rc.ts:
 * TPM_RC, with the decoded name such as TPM_RC_OBJECT_MEMORY), every other layer a TPM_TSS
 * error named after the tpm2-tss constant (TSS2_TCTI_RC_IO_ERROR, ...).
 */
import { SextantError } from '../../lib/errors.js';
import { TpmResponseError } from '../rc.js';
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

/**
 * Layers whose codes are TPM response codes: the TPM's own (0), and 11, which the Linux
 * kernel's /dev/tpmrm0 resource manager uses for TPM-format answers it makes itself.
 */
const TPM_FORMAT_LAYERS = new Set([0, 11]);

/** The error for a non-zero TSS2_RC returned by `fn`. */
export function tssError(fn: string, rc: number): SextantError {
  return TPM_FORMAT_LAYERS.has(rcLayer(rc)) ? new TpmResponseError(fn, rc) : new TssError(fn, rc);
}
