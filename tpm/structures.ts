/**
 * TPM 2.0 structures (Part 2, "Structures") declared as codec values. Each `TPMx_*` constant
 * is the wire codec; the matching `Tpmx*` type is derived from it.
 */
import { TPM_ALG, TPM_CAP, TPM_ST } from './constants.js';
import {
  bool,
  bytes,
  empty,
  fixed,
  list,
  prefixed,
  sized,
  struct,
  tagged,
  u16,
  u32,
  u64,
  u8,
  type ValueOf,
} from './codec.js';

// ---- sized buffers (Part 2 §10.4) -----------------------------------------------------

/** Largest digest of the hashes we support (SHA-512). */
const MAX_DIGEST = 64;
/** sizeof(TPMT_HA) with SHA-512: also bounds TPM2B_DATA and TPM2B_NAME. */
const MAX_HA = MAX_DIGEST + 2;

export const TPM2B_DIGEST = bytes(u16, 'TPM2B_DIGEST', MAX_DIGEST);
export const TPM2B_NONCE = bytes(u16, 'TPM2B_NONCE', MAX_DIGEST);
export const TPM2B_AUTH = bytes(u16, 'TPM2B_AUTH', MAX_DIGEST);
export const TPM2B_DATA = bytes(u16, 'TPM2B_DATA', MAX_HA);
/** A Name: a handle (4 bytes) for PCRs/sessions/permanent handles, else nameAlg || digest. */
export const TPM2B_NAME = bytes(u16, 'TPM2B_NAME', MAX_HA);
export const TPM2B_MAX_BUFFER = bytes(u16, 'TPM2B_MAX_BUFFER', 1024);
export const TPM2B_MAX_NV_BUFFER = bytes(u16, 'TPM2B_MAX_NV_BUFFER', 2048);
export const TPM2B_SENSITIVE_DATA = bytes(u16, 'TPM2B_SENSITIVE_DATA', 256);
export const TPM2B_EVENT = bytes(u16, 'TPM2B_EVENT', 1024);
export const TPM2B_TIMEOUT = bytes(u16, 'TPM2B_TIMEOUT', 8);
/** RSA modulus or signature, up to 4096 bits. */
export const TPM2B_PUBLIC_KEY_RSA = bytes(u16, 'TPM2B_PUBLIC_KEY_RSA', 512);
export const TPM2B_ECC_PARAMETER = bytes(u16, 'TPM2B_ECC_PARAMETER', 66);
/** credentialBlob of MakeCredential: TPM2B_DIGEST(integrity HMAC) || encIdentity. */
export const TPM2B_ID_OBJECT = bytes(u16, 'TPM2B_ID_OBJECT', 2 + MAX_DIGEST + 2 + MAX_DIGEST);
/** The seed, encrypted to the EK: RSA-OAEP ciphertext, or a marshalled TPMS_ECC_POINT. */
export const TPM2B_ENCRYPTED_SECRET = bytes(u16, 'TPM2B_ENCRYPTED_SECRET', 512);

// ---- PCR selection and digests (Part 2 §10.3, §10.6) ---------------------------------

export const TPMS_PCR_SELECTION = struct('TPMS_PCR_SELECTION', {
  hash: u16,
  /** Bitmap: bit (i % 8) of byte (i / 8) selects PCR i. */
  pcrSelect: bytes(u8, 'sizeofSelect', 32),
});
export type TpmsPcrSelection = ValueOf<typeof TPMS_PCR_SELECTION>;

export const TPML_PCR_SELECTION = list(u32, TPMS_PCR_SELECTION, 'TPML_PCR_SELECTION', 16);
export type TpmlPcrSelection = ValueOf<typeof TPML_PCR_SELECTION>;

export const TPML_DIGEST = list(u32, TPM2B_DIGEST, 'TPML_DIGEST', 8);

const digestArm = (n: number) => struct(`BYTE[${n}]`, { digest: fixed(n) });

export const TPMT_HA = tagged('TPMT_HA', 'hashAlg', u16, {
  [TPM_ALG.SHA1]: digestArm(20),
  [TPM_ALG.SHA256]: digestArm(32),
  [TPM_ALG.SHA384]: digestArm(48),
  [TPM_ALG.SHA512]: digestArm(64),
});
export type TpmtHa = ValueOf<typeof TPMT_HA>;

export const TPML_DIGEST_VALUES = list(u32, TPMT_HA, 'TPML_DIGEST_VALUES', 16);

// ---- algorithm parameters (Part 2 §11, §12.2) ----------------------------------------

const hashOnly = (name: string) => struct(name, { hashAlg: u16 });

export const TPMT_SYM_DEF_OBJECT = tagged('TPMT_SYM_DEF_OBJECT', 'algorithm', u16, {
  [TPM_ALG.AES]: struct('TPMS_SYM_AES', { keyBits: u16, mode: u16 }),
  [TPM_ALG.NULL]: empty,
});
export type TpmtSymDefObject = ValueOf<typeof TPMT_SYM_DEF_OBJECT>;

/** TPMT_SYM_DEF (session encryption): XOR's keyBits holds a hash algorithm and it has no mode. */
export const TPMT_SYM_DEF = tagged('TPMT_SYM_DEF', 'algorithm', u16, {
  [TPM_ALG.AES]: struct('TPMS_SYM_AES', { keyBits: u16, mode: u16 }),
  [TPM_ALG.XOR]: struct('TPMS_SYM_XOR', { keyBits: u16 }),
  [TPM_ALG.NULL]: empty,
});

export const TPMT_RSA_SCHEME = tagged('TPMT_RSA_SCHEME', 'scheme', u16, {
  [TPM_ALG.RSASSA]: hashOnly('TPMS_SIG_SCHEME_RSASSA'),
  [TPM_ALG.RSAPSS]: hashOnly('TPMS_SIG_SCHEME_RSAPSS'),
  [TPM_ALG.OAEP]: hashOnly('TPMS_ENC_SCHEME_OAEP'),
  [TPM_ALG.RSAES]: empty,
  [TPM_ALG.NULL]: empty,
});

export const TPMT_ECC_SCHEME = tagged('TPMT_ECC_SCHEME', 'scheme', u16, {
  [TPM_ALG.ECDSA]: hashOnly('TPMS_SIG_SCHEME_ECDSA'),
  [TPM_ALG.ECDH]: hashOnly('TPMS_KEY_SCHEME_ECDH'),
  [TPM_ALG.ECSCHNORR]: hashOnly('TPMS_SIG_SCHEME_ECSCHNORR'),
  [TPM_ALG.ECDAA]: struct('TPMS_SIG_SCHEME_ECDAA', { hashAlg: u16, count: u16 }),
  [TPM_ALG.NULL]: empty,
});

export const TPMT_KDF_SCHEME = tagged('TPMT_KDF_SCHEME', 'scheme', u16, {
  [TPM_ALG.KDF1_SP800_56A]: hashOnly('TPMS_KDF_SCHEME_KDF1_SP800_56A'),
  [TPM_ALG.KDF1_SP800_108]: hashOnly('TPMS_KDF_SCHEME_KDF1_SP800_108'),
  [TPM_ALG.NULL]: empty,
});

export const TPMT_KEYEDHASH_SCHEME = tagged('TPMT_KEYEDHASH_SCHEME', 'scheme', u16, {
  [TPM_ALG.HMAC]: hashOnly('TPMS_SCHEME_HMAC'),
  [TPM_ALG.XOR]: struct('TPMS_SCHEME_XOR', { hashAlg: u16, kdf: u16 }),
  [TPM_ALG.NULL]: empty,
});

/** TPMT_SIG_SCHEME: the signing scheme asked of TPM2_Quote / TPM2_Certify. */
export const TPMT_SIG_SCHEME = tagged('TPMT_SIG_SCHEME', 'scheme', u16, {
  [TPM_ALG.RSASSA]: hashOnly('TPMS_SIG_SCHEME_RSASSA'),
  [TPM_ALG.RSAPSS]: hashOnly('TPMS_SIG_SCHEME_RSAPSS'),
  [TPM_ALG.ECDSA]: hashOnly('TPMS_SIG_SCHEME_ECDSA'),
  [TPM_ALG.NULL]: empty,
});
export type TpmtSigScheme = ValueOf<typeof TPMT_SIG_SCHEME>;

export const TPMS_RSA_PARMS = struct('TPMS_RSA_PARMS', {
  symmetric: TPMT_SYM_DEF_OBJECT,
  scheme: TPMT_RSA_SCHEME,
  keyBits: u16,
  /** 0 means the default 65537. */
  exponent: u32,
});

export const TPMS_ECC_PARMS = struct('TPMS_ECC_PARMS', {
  symmetric: TPMT_SYM_DEF_OBJECT,
  scheme: TPMT_ECC_SCHEME,
  curveID: u16,
  kdf: TPMT_KDF_SCHEME,
});

export const TPMS_ECC_POINT = struct('TPMS_ECC_POINT', { x: TPM2B_ECC_PARAMETER, y: TPM2B_ECC_PARAMETER });
export type TpmsEccPoint = ValueOf<typeof TPMS_ECC_POINT>;
export const TPM2B_ECC_POINT = sized(u16, TPMS_ECC_POINT, 'TPM2B_ECC_POINT');

// ---- public area (Part 2 §12.2.4) -----------------------------------------------------

const publicCommon = {
  nameAlg: u16,
  /** TPMA_OBJECT bits, see constants.ts. */
  objectAttributes: u32,
  authPolicy: TPM2B_DIGEST,
};

export const TPMT_PUBLIC = tagged('TPMT_PUBLIC', 'type', u16, {
  [TPM_ALG.RSA]: struct('TPMT_PUBLIC(RSA)', {
    ...publicCommon,
    parameters: TPMS_RSA_PARMS,
    /** The modulus n. */
    unique: TPM2B_PUBLIC_KEY_RSA,
  }),
  [TPM_ALG.ECC]: struct('TPMT_PUBLIC(ECC)', {
    ...publicCommon,
    parameters: TPMS_ECC_PARMS,
    unique: TPMS_ECC_POINT,
  }),
  [TPM_ALG.KEYEDHASH]: struct('TPMT_PUBLIC(KEYEDHASH)', {
    ...publicCommon,
    parameters: struct('TPMS_KEYEDHASH_PARMS', { scheme: TPMT_KEYEDHASH_SCHEME }),
    unique: TPM2B_DIGEST,
  }),
  [TPM_ALG.SYMCIPHER]: struct('TPMT_PUBLIC(SYMCIPHER)', {
    ...publicCommon,
    parameters: struct('TPMS_SYMCIPHER_PARMS', { sym: TPMT_SYM_DEF_OBJECT }),
    unique: TPM2B_DIGEST,
  }),
});
export type TpmtPublic = ValueOf<typeof TPMT_PUBLIC>;
export type TpmtPublicRsa = Extract<TpmtPublic, { type: typeof TPM_ALG.RSA }>;
export type TpmtPublicEcc = Extract<TpmtPublic, { type: typeof TPM_ALG.ECC }>;

export const TPM2B_PUBLIC = sized(u16, TPMT_PUBLIC, 'TPM2B_PUBLIC');
export type Tpm2bPublic = ValueOf<typeof TPM2B_PUBLIC>;

export const TPMS_SENSITIVE_CREATE = struct('TPMS_SENSITIVE_CREATE', {
  userAuth: TPM2B_AUTH,
  data: TPM2B_SENSITIVE_DATA,
});
export const TPM2B_SENSITIVE_CREATE = sized(u16, TPMS_SENSITIVE_CREATE, 'TPM2B_SENSITIVE_CREATE');

// ---- creation data and tickets (Part 2 §10.7, §15.1) ----------------------------------

const ticket = (name: string) => struct(name, { tag: u16, hierarchy: u32, digest: TPM2B_DIGEST });
export const TPMT_TK_CREATION = ticket('TPMT_TK_CREATION');
export const TPMT_TK_VERIFIED = ticket('TPMT_TK_VERIFIED');
export const TPMT_TK_AUTH = ticket('TPMT_TK_AUTH');
export const TPMT_TK_HASHCHECK = ticket('TPMT_TK_HASHCHECK');

export const TPMS_CREATION_DATA = struct('TPMS_CREATION_DATA', {
  pcrSelect: TPML_PCR_SELECTION,
  pcrDigest: TPM2B_DIGEST,
  locality: u8,
  parentNameAlg: u16,
  parentName: TPM2B_NAME,
  parentQualifiedName: TPM2B_NAME,
  outsideInfo: TPM2B_DATA,
});
export const TPM2B_CREATION_DATA = sized(u16, TPMS_CREATION_DATA, 'TPM2B_CREATION_DATA');

// ---- attestation (Part 2 §10.12) ------------------------------------------------------

export const TPMS_CLOCK_INFO = struct('TPMS_CLOCK_INFO', {
  clock: u64,
  resetCount: u32,
  restartCount: u32,
  safe: bool,
});

export const TPMS_QUOTE_INFO = struct('TPMS_QUOTE_INFO', {
  pcrSelect: TPML_PCR_SELECTION,
  pcrDigest: TPM2B_DIGEST,
});

export const TPMS_CERTIFY_INFO = struct('TPMS_CERTIFY_INFO', {
  name: TPM2B_NAME,
  qualifiedName: TPM2B_NAME,
});

export const TPMS_CREATION_INFO = struct('TPMS_CREATION_INFO', {
  objectName: TPM2B_NAME,
  creationHash: TPM2B_DIGEST,
});

export const TPMS_TIME_ATTEST_INFO = struct('TPMS_TIME_ATTEST_INFO', {
  time: struct('TPMS_TIME_INFO', { time: u64, clockInfo: TPMS_CLOCK_INFO }),
  firmwareVersion: u64,
});

export const TPMS_NV_CERTIFY_INFO = struct('TPMS_NV_CERTIFY_INFO', {
  indexName: TPM2B_NAME,
  offset: u16,
  nvContents: TPM2B_MAX_NV_BUFFER,
});

const attestCommon = {
  qualifiedSigner: TPM2B_NAME,
  /** The caller's qualifying data (the verifier's nonce). */
  extraData: TPM2B_DATA,
  clockInfo: TPMS_CLOCK_INFO,
  firmwareVersion: u64,
};

/**
 * TPMS_ATTEST. `magic` is decoded as a plain number (not rejected here) so that the quote
 * verifier can report a foreign magic with its own error code.
 */
export const TPMS_ATTEST = prefixed(
  'TPMS_ATTEST',
  { magic: u32 },
  tagged('TPMS_ATTEST', 'type', u16, {
    [TPM_ST.ATTEST_QUOTE]: struct('TPMS_ATTEST(QUOTE)', { ...attestCommon, attested: TPMS_QUOTE_INFO }),
    [TPM_ST.ATTEST_CERTIFY]: struct('TPMS_ATTEST(CERTIFY)', { ...attestCommon, attested: TPMS_CERTIFY_INFO }),
    [TPM_ST.ATTEST_CREATION]: struct('TPMS_ATTEST(CREATION)', { ...attestCommon, attested: TPMS_CREATION_INFO }),
    [TPM_ST.ATTEST_TIME]: struct('TPMS_ATTEST(TIME)', { ...attestCommon, attested: TPMS_TIME_ATTEST_INFO }),
    [TPM_ST.ATTEST_NV]: struct('TPMS_ATTEST(NV)', { ...attestCommon, attested: TPMS_NV_CERTIFY_INFO }),
  }),
);
export type TpmsAttest = ValueOf<typeof TPMS_ATTEST>;
export type TpmsAttestQuote = Extract<TpmsAttest, { type: typeof TPM_ST.ATTEST_QUOTE }>;

export const TPM2B_ATTEST = sized(u16, TPMS_ATTEST, 'TPM2B_ATTEST');

// ---- signatures (Part 2 §11.3) --------------------------------------------------------

const rsaSignature = (name: string) => struct(name, { hash: u16, sig: TPM2B_PUBLIC_KEY_RSA });

export const TPMT_SIGNATURE = tagged('TPMT_SIGNATURE', 'sigAlg', u16, {
  [TPM_ALG.RSASSA]: rsaSignature('TPMS_SIGNATURE_RSASSA'),
  [TPM_ALG.RSAPSS]: rsaSignature('TPMS_SIGNATURE_RSAPSS'),
  [TPM_ALG.ECDSA]: struct('TPMS_SIGNATURE_ECDSA', { hash: u16, r: TPM2B_ECC_PARAMETER, s: TPM2B_ECC_PARAMETER }),
  [TPM_ALG.NULL]: empty,
});
export type TpmtSignature = ValueOf<typeof TPMT_SIGNATURE>;

// ---- capabilities (Part 2 §10.10) -----------------------------------------------------

export const TPMS_ALG_PROPERTY = struct('TPMS_ALG_PROPERTY', { alg: u16, algProperties: u32 });
export const TPMS_TAGGED_PROPERTY = struct('TPMS_TAGGED_PROPERTY', { property: u32, value: u32 });

export const TPMS_CAPABILITY_DATA = tagged('TPMS_CAPABILITY_DATA', 'capability', u32, {
  [TPM_CAP.ALGS]: struct('TPML_ALG_PROPERTY', {
    algorithms: list(u32, TPMS_ALG_PROPERTY, 'TPML_ALG_PROPERTY', 256),
  }),
  [TPM_CAP.HANDLES]: struct('TPML_HANDLE', { handles: list(u32, u32, 'TPML_HANDLE', 1024) }),
  [TPM_CAP.COMMANDS]: struct('TPML_CCA', { commands: list(u32, u32, 'TPML_CCA', 512) }),
  [TPM_CAP.PCRS]: struct('TPML_PCR_SELECTION', { assignedPCR: TPML_PCR_SELECTION }),
  [TPM_CAP.TPM_PROPERTIES]: struct('TPML_TAGGED_TPM_PROPERTY', {
    tpmProperties: list(u32, TPMS_TAGGED_PROPERTY, 'TPML_TAGGED_TPM_PROPERTY', 512),
  }),
  [TPM_CAP.ECC_CURVES]: struct('TPML_ECC_CURVE', { eccCurves: list(u32, u16, 'TPML_ECC_CURVE', 64) }),
});
export type TpmsCapabilityData = ValueOf<typeof TPMS_CAPABILITY_DATA>;

// ---- NV (Part 2 §13.5) ----------------------------------------------------------------

export const TPMS_NV_PUBLIC = struct('TPMS_NV_PUBLIC', {
  nvIndex: u32,
  nameAlg: u16,
  /** TPMA_NV bits. */
  attributes: u32,
  authPolicy: TPM2B_DIGEST,
  dataSize: u16,
});
export type TpmsNvPublic = ValueOf<typeof TPMS_NV_PUBLIC>;
export const TPM2B_NV_PUBLIC = sized(u16, TPMS_NV_PUBLIC, 'TPM2B_NV_PUBLIC');
