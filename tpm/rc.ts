/**
 * TPM response codes (Part 2 §6.6) decoded into the names users search for
 * (`TPM_RC_POLICY_FAIL`, `TPM_RC_OBJECT_MEMORY`, ...) plus which handle, session or parameter
 * the TPM blamed. Also reads the tpm2-tss layer byte (bits 16-23) so a TSS2_RC from ESYS can be
 * given here as is; codes of the software layers are named by the engine (tpm/engine/tss-rc.ts).
 */
import { SextantError } from '../lib/errors.js';

/** Format-zero codes, TPM 2.0 errors: TPM_RC_VER1 (0x100) + number. */
const FMT0_ERRORS: Record<number, [string, string]> = {
  0x00: ['INITIALIZE', 'TPM not initialized by TPM2_Startup, or already initialized'],
  0x01: ['FAILURE', 'the TPM is in failure mode and accepts no commands'],
  0x03: ['SEQUENCE', 'improper use of a sequence handle'],
  0x0b: ['PRIVATE', 'not currently used'],
  0x19: ['HMAC', 'not currently used'],
  0x20: ['DISABLED', 'the command is disabled'],
  0x21: ['EXCLUSIVE', 'the command failed because an audit sequence required exclusivity'],
  0x24: ['AUTH_TYPE', 'the authorization handle is not correct for the command'],
  0x25: ['AUTH_MISSING', 'the command requires an authorization session for a handle and it is not present'],
  0x26: ['POLICY', 'the policy failure in math operation or an invalid authPolicy value'],
  0x27: ['PCR', 'PCR check fail'],
  0x28: ['PCR_CHANGED', 'the PCRs changed since the policy session was started'],
  0x2d: ['UPGRADE', 'the TPM is in field upgrade mode'],
  0x2e: ['TOO_MANY_CONTEXTS', 'context ID counter is at maximum'],
  0x2f: ['AUTH_UNAVAILABLE', 'authValue or authPolicy is not available for the selected entity'],
  0x30: ['REBOOT', 'a _TPM_Init and Startup(CLEAR) is required before the TPM can resume'],
  0x31: ['UNBALANCED', 'the symmetric algorithm of the session is weaker than its hash'],
  0x42: ['COMMAND_SIZE', 'the command size is inconsistent with the command'],
  0x43: ['COMMAND_CODE', 'the command code is not supported'],
  0x44: ['AUTHSIZE', 'the authorization size is out of range or does not match the sessions'],
  0x45: ['AUTH_CONTEXT', 'use of an authorization session with a context command'],
  0x46: ['NV_RANGE', 'NV offset + size is out of range'],
  0x47: ['NV_SIZE', 'requested allocation size is larger than allowed'],
  0x48: ['NV_LOCKED', 'the NV index is locked for reading or writing'],
  0x49: ['NV_AUTHORIZATION', 'NV access authorization fails in the command actions'],
  0x4a: ['NV_UNINITIALIZED', 'the NV index has not been written'],
  0x4b: ['NV_SPACE', 'insufficient space for NV allocation'],
  0x4c: ['NV_DEFINED', 'the NV index is already defined'],
  0x50: ['BAD_CONTEXT', 'the context in TPM2_ContextLoad is not valid'],
  0x51: ['CPHASH', 'cpHash value already set or not correct for use'],
  0x52: ['PARENT', 'the handle for the parent is not a valid parent'],
  0x53: ['NEEDS_TEST', 'some function needs testing'],
  0x54: ['NO_RESULT', 'an internal function cannot process a request'],
  0x55: ['SENSITIVE', 'the sensitive area did not unmarshal correctly after decryption'],
};

/** Format-zero warnings: TPM_RC_WARN (0x900) + number. */
const WARNINGS: Record<number, [string, string]> = {
  0x01: ['CONTEXT_GAP', 'gap for context ID is too large'],
  0x02: ['OBJECT_MEMORY', 'out of memory for object contexts (flush transient objects)'],
  0x03: ['SESSION_MEMORY', 'out of memory for session contexts'],
  0x04: ['MEMORY', 'out of shared object/session memory, or memory for the command'],
  0x05: ['SESSION_HANDLES', 'out of session handles'],
  0x06: ['OBJECT_HANDLES', 'out of object handles'],
  0x07: ['LOCALITY', 'bad locality'],
  0x08: ['YIELDED', 'the TPM suspended the operation; resubmit it'],
  0x09: ['CANCELED', 'the command was canceled'],
  0x0a: ['TESTING', 'the TPM is performing self-tests'],
  0x20: ['NV_RATE', 'the TPM is rate-limiting NV writes'],
  0x21: ['LOCKOUT', 'dictionary-attack lockout: authorizations of DA-protected objects are refused'],
  0x22: ['RETRY', 'the TPM was not able to start the command; retry it'],
  0x23: ['NV_UNAVAILABLE', 'the command may require writing NV and NV is not accessible'],
  0x7f: ['NOT_USED', 'this value is reserved and shall not be returned by the TPM'],
};
for (let i = 0; i <= 6; i++) {
  WARNINGS[0x10 + i] = [`REFERENCE_H${i}`, `handle ${i + 1} references a transient object or session that is not loaded`];
  WARNINGS[0x18 + i] = [`REFERENCE_S${i}`, `session ${i + 1} references a session that is not loaded`];
}

/** Format-one codes: TPM_RC_FMT1 (0x080) + number, blamed on a handle, session or parameter. */
const FMT1_ERRORS: Record<number, [string, string]> = {
  0x01: ['ASYMMETRIC', 'asymmetric algorithm not supported or not correct'],
  0x02: ['ATTRIBUTES', 'inconsistent attributes'],
  0x03: ['HASH', 'hash algorithm not supported or not appropriate'],
  0x04: ['VALUE', 'value is out of range or is not correct for the context'],
  0x05: ['HIERARCHY', 'hierarchy is not enabled or is not correct for the use'],
  0x07: ['KEY_SIZE', 'key size is not supported'],
  0x08: ['MGF', 'mask generation function not supported'],
  0x09: ['MODE', 'mode of operation not supported'],
  0x0a: ['TYPE', 'the type of the value is not appropriate for the use'],
  0x0b: ['HANDLE', 'the handle is not correct for the use'],
  0x0c: ['KDF', 'unsupported key derivation function or not appropriate for use'],
  0x0d: ['RANGE', 'value was out of allowed range'],
  0x0e: ['AUTH_FAIL', 'the authorization HMAC check failed and the DA counter was incremented'],
  0x0f: ['NONCE', 'invalid nonce size or nonce value mismatch'],
  0x10: ['PP', 'authorization requires assertion of physical presence'],
  0x12: ['SCHEME', 'unsupported or incompatible scheme'],
  0x15: ['SIZE', 'structure is the wrong size'],
  0x16: ['SYMMETRIC', 'unsupported symmetric algorithm or key size, or not appropriate for the instance'],
  0x17: ['TAG', 'incorrect structure tag'],
  0x18: ['SELECTOR', 'union selector is incorrect'],
  0x1a: ['INSUFFICIENT', 'the TPM was unable to unmarshal a value because there were not enough octets'],
  0x1b: ['SIGNATURE', 'the signature is not valid'],
  0x1c: ['KEY', 'key fields are not compatible with the selected use'],
  0x1d: ['POLICY_FAIL', 'a policy check failed'],
  0x1f: ['INTEGRITY', 'integrity check failed (e.g. a credential blob for another key or TPM)'],
  0x20: ['TICKET', 'invalid ticket'],
  0x21: ['RESERVED_BITS', 'reserved bits not set to zero as required'],
  0x22: ['BAD_AUTH', 'authorization failure without DA implications'],
  0x23: ['EXPIRED', 'the policy has expired'],
  0x24: ['POLICY_CC', 'the commandCode in the policy is not the commandCode of the command'],
  0x25: ['BINDING', 'public and sensitive portions of an object are not cryptographically bound'],
  0x26: ['CURVE', 'curve not supported'],
  0x27: ['ECC_POINT', 'point is not on the required curve'],
  0x28: ['FW_LIMITED', 'the hierarchy is firmware-limited'],
  0x29: ['SVN_LIMITED', 'the hierarchy is SVN-limited'],
  0x30: ['CHANNEL', 'command requires a secure channel protocol'],
  0x31: ['CHANNEL_KEY', 'secure channel did not use the correct requester or TPM key'],
};

/**
 * tpm2-tss layers (bits 16-23 of a TSS2_RC, tss2_common.h). Layer 11 (RESMGR_TPM) carries a TPM
 * response code produced by a resource manager, e.g. the kernel's /dev/tpmrm0 answering
 * TPM_RC_COMMAND_CODE | 0xb0000 for a command it does not pass on.
 */
const LAYERS: Record<number, string> = {
  0: 'TPM',
  6: 'FEATURE',
  7: 'ESYS',
  8: 'SYS',
  9: 'MU',
  10: 'TCTI',
  11: 'RESMGR_TPM',
  12: 'RESMGR',
};
const TPM_CODE_LAYERS = new Set([0, 11]);

/** The tpm2-tss layer name of a TSS2_RC ('TPM' for 0, 'ESYS' for 0x7xxxx, ...). */
export function tssLayerName(rc: number): string {
  const n = (rc >>> 16) & 0xff;
  return LAYERS[n] ?? `LAYER${n}`;
}

export type RcKind = 'success' | 'error' | 'warning' | 'tpm12' | 'vendor' | 'tss';

export interface DecodedRc {
  rc: number;
  /** tpm2-tss layer name ('TPM' for the TPM's own answer). */
  layer: string;
  kind: RcKind;
  /** The spec name, e.g. TPM_RC_HANDLE; for software layers, TSS2_<LAYER>_RC_0x<code>. */
  name: string;
  /** 1-based number of the blamed handle/session/parameter (format one), when the TPM said. */
  handle?: number;
  session?: number;
  parameter?: number;
  description: string;
  /** One line for messages: "TPM_RC_HANDLE (handle 1): the handle is not correct for the use". */
  text: string;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** Decodes a TPM_RC, or a TSS2_RC (the TPM layers are decoded, the software layers only named). */
export function decodeRc(rc: number): DecodedRc {
  const layerNo = (rc >>> 16) & 0xff;
  const layer = tssLayerName(rc);
  const code = rc & 0xffff;
  const base = { rc, layer };
  const done = (d: Omit<DecodedRc, 'rc' | 'layer' | 'text'>, where = ''): DecodedRc => ({
    ...base,
    ...d,
    text: `${d.name}${where}: ${d.description}`,
  });

  if (!TPM_CODE_LAYERS.has(layerNo)) {
    return done({ kind: 'tss', name: `TSS2_${layer}_RC_${hex(code)}`, description: `a tpm2-tss ${layer} layer error` });
  }
  if (code === 0) return done({ kind: 'success', name: 'TPM_RC_SUCCESS', description: 'success' });

  if (code & 0x80) {
    const n = code & 0x3f;
    const [short, description] = FMT1_ERRORS[n] ?? [`FMT1_${hex(n)}`, 'unknown format-one error'];
    const name = `TPM_RC_${short}`;
    if (code & 0x40) {
      const parameter = (code >> 8) & 0xf;
      return parameter
        ? done({ kind: 'error', name, description, parameter }, ` (parameter ${parameter})`)
        : done({ kind: 'error', name, description });
    }
    const number = (code >> 8) & 0x7;
    if (code & 0x800) {
      return number
        ? done({ kind: 'error', name, description, session: number }, ` (session ${number})`)
        : done({ kind: 'error', name, description });
    }
    return number
      ? done({ kind: 'error', name, description, handle: number }, ` (handle ${number})`)
      : done({ kind: 'error', name, description });
  }

  if (!(code & 0x100)) {
    return done({ kind: 'tpm12', name: `TPM_RC_${hex(code)}`, description: 'a TPM 1.2 response code' });
  }
  if (code & 0x400) {
    return done({ kind: 'vendor', name: `TPM_RC_VENDOR_${hex(code & 0x7f)}`, description: 'a vendor-defined response code' });
  }
  const n = code & 0x7f;
  if (code & 0x800) {
    const [short, description] = WARNINGS[n] ?? [`WARN_${hex(n)}`, 'unknown warning'];
    return done({ kind: 'warning', name: `TPM_RC_${short}`, description });
  }
  const [short, description] = FMT0_ERRORS[n] ?? [`VER1_${hex(n)}`, 'unknown TPM 2.0 error'];
  return done({ kind: 'error', name: `TPM_RC_${short}`, description });
}

/** Warnings that go away when the same command is sent again (Part 3 §5.5 and §6.6). */
export function isRetryable(rc: number): boolean {
  const d = decodeRc(rc);
  return d.kind === 'warning' && ['TPM_RC_YIELDED', 'TPM_RC_TESTING', 'TPM_RC_RETRY', 'TPM_RC_NV_RATE'].includes(d.name);
}

/** The TPM's error answer to a command: code TPM_RC, the raw `rc` and its decoding. */
export class TpmResponseError extends SextantError {
  readonly rc: number;
  readonly decoded: DecodedRc;
  /** The command that failed, e.g. "TPM2_Quote" or "Esys_Quote". */
  readonly command: string;

  constructor(command: string, rc: number) {
    const decoded = decodeRc(rc);
    super({ code: 'TPM_RC', message: `${command}: ${decoded.text} (${hex(rc)})` });
    this.name = 'TpmResponseError';
    this.rc = rc;
    this.decoded = decoded;
    this.command = command;
  }

  /** The spec name, e.g. TPM_RC_POLICY_FAIL. */
  get rcName(): string {
    return this.decoded.name;
  }
}
