/** TPM 2.0 constants (Part 2 §6 and §8), only the ones sextant uses. */
import type { HashAlg } from '../lib/bytes.js';

/** TPM_ALG_ID (Part 2 §6.3). */
export const TPM_ALG = {
  ERROR: 0x0000,
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  ECSCHNORR: 0x001c,
  KDF1_SP800_56A: 0x0020,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CTR: 0x0040,
  OFB: 0x0041,
  CBC: 0x0042,
  CFB: 0x0043,
  ECB: 0x0044,
} as const;

/** TPM_ST (Part 2 §6.9). */
export const TPM_ST = {
  NULL: 0x8000,
  NO_SESSIONS: 0x8001,
  SESSIONS: 0x8002,
  ATTEST_NV: 0x8014,
  ATTEST_COMMAND_AUDIT: 0x8015,
  ATTEST_SESSION_AUDIT: 0x8016,
  ATTEST_CERTIFY: 0x8017,
  ATTEST_QUOTE: 0x8018,
  ATTEST_TIME: 0x8019,
  ATTEST_CREATION: 0x801a,
  ATTEST_NV_DIGEST: 0x801c,
  CREATION: 0x8021,
  VERIFIED: 0x8022,
  AUTH_SECRET: 0x8023,
  HASHCHECK: 0x8024,
  AUTH_SIGNED: 0x8025,
} as const;

/** TPM_GENERATED_VALUE (Part 2 §6.2): the magic of every TPM-produced TPMS_ATTEST. */
export const TPM_GENERATED_VALUE = 0xff544347;

/** TPM_ECC_CURVE (Part 2 §6.4). */
export const TPM_ECC_CURVE = {
  NONE: 0x0000,
  NIST_P192: 0x0001,
  NIST_P224: 0x0002,
  NIST_P256: 0x0003,
  NIST_P384: 0x0004,
  NIST_P521: 0x0005,
  BN_P256: 0x0010,
  SM2_P256: 0x0020,
} as const;

/** TPM_CC (Part 2 §6.5.2). */
export const TPM_CC = {
  NV_UndefineSpaceSpecial: 0x011f,
  EvictControl: 0x0120,
  NV_DefineSpace: 0x012a,
  CreatePrimary: 0x0131,
  NV_Write: 0x0137,
  PCR_Extend: 0x0182,
  PolicySecret: 0x0151,
  Create: 0x0153,
  Quote: 0x0158,
  ActivateCredential: 0x0147,
  Certify: 0x0148,
  NV_Read: 0x014e,
  Load: 0x0157,
  Unseal: 0x015e,
  ContextLoad: 0x0161,
  ContextSave: 0x0162,
  FlushContext: 0x0165,
  LoadExternal: 0x0167,
  MakeCredential: 0x0168,
  NV_ReadPublic: 0x0169,
  PolicyCommandCode: 0x016c,
  ReadPublic: 0x0173,
  StartAuthSession: 0x0176,
  GetCapability: 0x017a,
  GetRandom: 0x017b,
  PCR_Read: 0x017e,
  PCR_Event: 0x013c,
  PolicyGetDigest: 0x0189,
  Startup: 0x0144,
  Shutdown: 0x0145,
} as const;

/** TPM_CAP (Part 2 §6.12). */
export const TPM_CAP = {
  ALGS: 0x00000000,
  HANDLES: 0x00000001,
  COMMANDS: 0x00000002,
  PP_COMMANDS: 0x00000003,
  AUDIT_COMMANDS: 0x00000004,
  PCRS: 0x00000005,
  TPM_PROPERTIES: 0x00000006,
  PCR_PROPERTIES: 0x00000007,
  ECC_CURVES: 0x00000008,
} as const;

/** TPM_PT (Part 2 §6.13): a few fixed/variable properties worth naming. */
export const TPM_PT = {
  FAMILY_INDICATOR: 0x100,
  LEVEL: 0x101,
  REVISION: 0x102,
  DAY_OF_YEAR: 0x103,
  YEAR: 0x104,
  MANUFACTURER: 0x105,
  VENDOR_STRING_1: 0x106,
  VENDOR_STRING_2: 0x107,
  VENDOR_STRING_3: 0x108,
  VENDOR_STRING_4: 0x109,
  FIRMWARE_VERSION_1: 0x10b,
  FIRMWARE_VERSION_2: 0x10c,
  INPUT_BUFFER: 0x10d,
  HR_TRANSIENT_MIN: 0x10e,
  HR_PERSISTENT_MIN: 0x10f,
  HR_LOADED_MIN: 0x110,
  PCR_COUNT: 0x112,
  MAX_COMMAND_SIZE: 0x11e,
  MAX_RESPONSE_SIZE: 0x11f,
  MAX_DIGEST: 0x120,
  NV_BUFFER_MAX: 0x12c,
  HR_TRANSIENT_AVAIL: 0x207,
  HR_LOADED: 0x208,
  HR_LOADED_AVAIL: 0x209,
} as const;

/** TPM_HT (Part 2 §7.2): the top byte of a handle. */
export const TPM_HT = {
  PCR: 0x00,
  NV_INDEX: 0x01,
  HMAC_SESSION: 0x02,
  POLICY_SESSION: 0x03,
  PERMANENT: 0x40,
  TRANSIENT: 0x80,
  PERSISTENT: 0x81,
} as const;

/** TPM_RH / TPM_RS permanent handles (Part 2 §7.4). */
export const TPM_RH = {
  OWNER: 0x40000001,
  NULL: 0x40000007,
  PW: 0x40000009,
  LOCKOUT: 0x4000000a,
  ENDORSEMENT: 0x4000000b,
  PLATFORM: 0x4000000c,
} as const;

/** TPMA_OBJECT bits (Part 2 §8.3). */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

/** TPMA_NV bits used when reading EK certificate indices (Part 2 §13.4). */
export const TPMA_NV = {
  PPWRITE: 1 << 0,
  OWNERWRITE: 1 << 1,
  AUTHWRITE: 1 << 2,
  POLICYWRITE: 1 << 3,
  POLICY_DELETE: 1 << 10,
  WRITELOCKED: 1 << 11,
  WRITEALL: 1 << 12,
  WRITEDEFINE: 1 << 13,
  WRITE_STCLEAR: 1 << 14,
  GLOBALLOCK: 1 << 15,
  PPREAD: 1 << 16,
  OWNERREAD: 1 << 17,
  AUTHREAD: 1 << 18,
  POLICYREAD: 1 << 19,
  NO_DA: 1 << 25,
  ORDERLY: 1 << 26,
  CLEAR_STCLEAR: 1 << 27,
  READLOCKED: 1 << 28,
  WRITTEN: 1 << 29,
  PLATFORMCREATE: 1 << 30,
  READ_STCLEAR: 2 ** 31,
} as const;

/** EK certificate NV indices (TCG EK Credential Profile §2.2.1.5). */
export const EK_CERT_NV_INDEX = { rsa2048: 0x01c00002, eccP256: 0x01c0000a } as const;

export type TpmHashAlgId = typeof TPM_ALG.SHA1 | typeof TPM_ALG.SHA256 | typeof TPM_ALG.SHA384 | typeof TPM_ALG.SHA512;

const HASH_BY_ID: Record<number, HashAlg> = {
  [TPM_ALG.SHA1]: 'sha1',
  [TPM_ALG.SHA256]: 'sha256',
  [TPM_ALG.SHA384]: 'sha384',
  [TPM_ALG.SHA512]: 'sha512',
};

const ID_BY_HASH: Record<HashAlg, TpmHashAlgId> = {
  sha1: TPM_ALG.SHA1,
  sha256: TPM_ALG.SHA256,
  sha384: TPM_ALG.SHA384,
  sha512: TPM_ALG.SHA512,
};

/** The node:crypto name of a TPM hash algorithm id, or undefined when not a supported hash. */
export function hashAlgName(id: number): HashAlg | undefined {
  return HASH_BY_ID[id];
}

export function hashAlgId(alg: HashAlg): TpmHashAlgId {
  return ID_BY_HASH[alg];
}

/** Readable name of an algorithm id (for errors and JSON), e.g. 0x000b -> "sha256". */
export function algName(id: number): string {
  for (const [k, v] of Object.entries(TPM_ALG)) if (v === id) return k.toLowerCase();
  return `0x${id.toString(16).padStart(4, '0')}`;
}
