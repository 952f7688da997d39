/**
 * One error class for the whole project, with a stable `code` callers can branch on
 * (tests assert codes, never message text). Subclass only to carry data.
 */

/** Codes for bad input: the CLI exits 2 for these, 1 for every other code. */
export const INPUT_ERROR_CODES = [
  'USAGE',
  'INVALID_ARGUMENT',
  'FILE_NOT_FOUND',
  'PE_MALFORMED',
  'UKI_MALFORMED',
  'STUB_NOT_MODELLED',
  'EVENTLOG_TRUNCATED',
  'EVENTLOG_MALFORMED',
  // a well-formed log in a format sextant does not replay (CEL-TLV, IMA's log, ...): never "malformed"
  'EVENTLOG_FORMAT_UNSUPPORTED',
  'MEASUREMENTS_INVALID',
  'KEY_INVALID',
  'CONFIG_INVALID',
  'TPM_UNMARSHAL',
  // a value the TPM wire format cannot carry (an encoder's refusal, not a bad response)
  'TPM_MARSHAL',
  'PROTOCOL_INVALID',
  'REQUEST_TOO_LARGE',
  // AMD SEV-SNP evidence that is not what it claims to be (attestation/snp/)
  'SNP_REPORT_MALFORMED',
  'SNP_HCL_MALFORMED',
  'SNP_CERT_MALFORMED',
  'SNP_CRL_MALFORMED',
  // the agent's attestation.variant names SNP evidence this node cannot give (no HCL report in
  // the vTPM, no configfs-tsm, an unreadable VCEK/chain file): permanent, `agent run` exits 2
  'SNP_EVIDENCE_UNAVAILABLE',
  // Secure Boot inputs: key folders, signature lists, OVMF variable stores, PE signatures
  'SB_KEYS_INVALID',
  'VARSTORE_INVALID',
  'PE_SIGNATURE_INVALID',
  // a mini cluster's state folder (state.json) that is not one sextant wrote
  'MINI_STATE_INVALID',
  // an image version that is not dotted numeric (1.2.3, optionally v1.2.3): rollouts order sets by it
  'MEASUREMENTS_VERSION_INVALID',
  // a `sextant mini apply` config (mini.yaml / JSON) outside its schema (the error's reason says how)
  'MINI_CONFIG_INVALID',
] as const;

/** Codes for failures of an operation on valid input. */
export const FAILURE_ERROR_CODES = [
  'INTERNAL',
  'EXEC_FAILED',
  'TOOL_MISSING',
  'IO_FAILED',
  'SIGNATURE_INVALID',
  'EVENTLOG_REPLAY_MISMATCH',
  'IMAGE_MISMATCH',
  /** The UKI is unsigned, or no db entry authorizes its signer: the firmware would refuse it. */
  'SB_NOT_AUTHORIZED',
  // TPM
  'TPM_RC',
  'TPM_TSS',
  'TPM_UNAVAILABLE',
  'TPM_NO_EK_CERT',
  // a response whose HMAC does not verify: changed between the TPM and us (or a TPM fault)
  'TPM_RESPONSE_HMAC_INVALID',
  'CREDENTIAL_ACTIVATION_FAILED',
  // attestation verification, in verification order
  'EK_CERT_UNTRUSTED',
  'EK_CERT_ABSENT',
  // credential activation failed: the AK is not in the TPM that holds the EK
  'AK_NOT_BOUND',
  // not a restricted, TPM-generated, non-duplicable signing key
  'AK_ATTRIBUTES_INVALID',
  // an AK whose key type is neither RSA nor ECC
  'AK_ALGORITHM_UNSUPPORTED',
  'QUOTE_NOT_TPM_GENERATED',
  'QUOTE_SIGNATURE_INVALID',
  'SESSION_UNKNOWN',
  'QUOTE_NONCE_MISMATCH',
  'QUOTE_SIGNER_MISMATCH',
  'NONCE_UNKNOWN',
  'NONCE_EXPIRED',
  'NONCE_REPLAYED',
  'PCR_DIGEST_MISMATCH',
  'EVENTLOG_REQUIRED',
  'MEASUREMENTS_MISMATCH',
  'CLUSTER_LOCK_SET',
  'CLUSTER_LOCK_MISMATCH',
  'NODE_UNKNOWN',
  'NODE_NAME_MISMATCH',
  'DISK_BOUND_ELSEWHERE',
  'CONFIRM_PCRS_CHANGED',
  'CONFIRM_REBOOTED',
  'RATE_LIMITED',
  'KEYSERVICE_UNREACHABLE',
  'KEYSERVICE_REFUSED',
  'TLS_FINGERPRINT_MISMATCH',
  // the agent's verdict on the key service's own attestation (mutual attestation)
  'KEYSERVICE_NOT_ATTESTED',
  'KEYSERVICE_EK_UNTRUSTED',
  // the key service's AK public area does not parse or is not a restricted TPM signing key
  'KEYSERVICE_AK_INVALID',
  // the key service's AK is not in the TPM of its EK certificate (credential activation failed)
  'KEYSERVICE_AK_NOT_BOUND',
  'KEYSERVICE_QUOTE_INVALID',
  'KEYSERVICE_QUOTE_NOT_BOUND',
  'KEYSERVICE_MEASUREMENTS_MISMATCH',
  'SEAL_INVALID',
  // AMD SEV-SNP verification (attestation/snp/verify.ts), in stage order
  'SNP_REPORT_VERSION_UNSUPPORTED',
  'SNP_SIGNATURE_ALGO_UNSUPPORTED',
  'SNP_CHAIN_MISSING',
  'SNP_ROOT_NOT_PINNED',
  'SNP_CHAIN_INVALID',
  'SNP_CERT_EXPIRED',
  'SNP_CRL_INVALID',
  'SNP_CERT_REVOKED',
  'SNP_SIGNER_MISMATCH',
  'SNP_TCB_MISMATCH',
  'SNP_CHIP_ID_MISMATCH',
  'SNP_SIGNATURE_INVALID',
  'SNP_RUNTIME_DATA_MISMATCH',
  'SNP_REPORT_DATA_MISMATCH',
  'SNP_POLICY_REFUSED',
  'SNP_TCB_TOO_OLD',
  'SNP_MEASUREMENT_UNKNOWN',
  'SNP_ID_KEY_UNKNOWN',
  // attestation variants (attestation/variant.ts, attestation/snp/bind-ak.ts): the node's SNP evidence and what it binds
  'VARIANT_EVIDENCE_REQUIRED',
  'VARIANT_EVIDENCE_UNEXPECTED',
  'VARIANT_AK_NOT_BOUND',
  'AUDIT_LOG_BROKEN',
  // disk bindings (keyservice/binding/)
  'DISK_BINDING_CONFLICT',
  'DISK_BINDING_BROKEN',
  'AUDIT_LOG_IN_USE',
  // the audit log cannot be written (full disk, I/O error): fail closed, retry later
  'AUDIT_UNAVAILABLE',
  // a release whose record exceeds the per-record cap (nothing is released)
  'AUDIT_RECORD_TOO_LARGE',
  // the shared store (etcd) cannot answer (no quorum, unreachable): refuse, release nothing, retry later
  'STORE_UNAVAILABLE',
  // etcd's TLS failed (its certificate does not verify against --etcd-ca, it refused our client certificate or its absence, or it does not speak TLS): configuration, not an outage
  'STORE_TLS_FAILED',
  // the agent's platform configuration source (a cloud metadata service) did not answer as documented
  'CONFIG_SOURCE_UNAVAILABLE',
  // state disk
  'DISK_NOT_FOUND',
  'DISK_AMBIGUOUS',
  'DISK_FOREIGN_DATA',
  'DISK_HEADER_REJECTED',
  'DISK_HEADER_DAMAGED',
  'DISK_UNALIGNED',
  'DISK_WRONG_KEY',
  'DISK_STEP_FAILED',
  'STATE_DISK_CLUSTER_MISMATCH',
  // join
  'JOIN_FAILED',
  'TOKEN_REGISTRATION_FAILED',
  'RECOVERY_FAILED',
  'RECOVERY_UNAUTHORIZED',
  // image build
  'BUILD_FAILED',
  'COMPONENT_HASH_MISMATCH',
  'TIMEOUT',
  // sextant mini: another command holds the state folder; a node failed to attest or join
  'MINI_BUSY',
  'MINI_NODE_FAILED',
  // rolling upgrades (keyservice/measurement-sets.ts): a signed file older than the newest ever
  // accepted; the same version with other content; a version the service does not hold
  'MEASUREMENTS_ROLLBACK',
  'MEASUREMENTS_VERSION_REUSED',
  'MEASUREMENTS_VERSION_UNKNOWN',
  // sextant mini apply: a step of the rollout failed (the message names the step; run apply again to continue)
  'MINI_APPLY_FAILED',
] as const;

export type SextantErrorCode =
  | (typeof INPUT_ERROR_CODES)[number]
  | (typeof FAILURE_ERROR_CODES)[number];

const inputCodes: ReadonlySet<string> = new Set(INPUT_ERROR_CODES);

export interface SextantErrorOptions {
  code: SextantErrorCode;
  message: string;
  cause?: unknown;
}

export class SextantError extends Error {
  readonly code: SextantErrorCode;

  constructor({ code, message, cause }: SextantErrorOptions) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'SextantError';
    this.code = code;
  }

  /** True when the error is the caller's input, not a failure of the operation. */
  get isInputError(): boolean {
    return inputCodes.has(this.code);
  }

  toJSON(): { code: SextantErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isSextantError(e: unknown, code?: SextantErrorCode): e is SextantError {
  return e instanceof SextantError && (code === undefined || e.code === code);
}

/** Shorthand for the common throw site. */
export function fail(code: SextantErrorCode, message: string, cause?: unknown): never {
  throw new SextantError({ code, message, cause });
}
