/**
 * koffi bindings to tpm2-tss: ESYS (commands), MU (wire bytes <-> C structures) and the TCTI
 * loader. Libraries are loaded by soname, lazily, so importing the engine never fails on a
 * machine without tpm2-tss (the key service verifies with the pure-TS codec only).
 *
 * C structures never get a hand-written layout here: inputs are unmarshalled by libtss2-mu
 * from wire bytes into opaque buffers, outputs are marshalled back to wire bytes (see mu.ts).
 */
import koffi from 'koffi';
import { SextantError } from '../../lib/errors.js';

/** A C pointer as koffi hands it out (an opaque external value). */
export type NativePointer = { readonly __nativePointer: unique symbol };

/** A koffi function: called synchronously, or on a worker thread through `.async`. */
export interface NativeFunction {
  (...args: unknown[]): unknown;
  async(...args: unknown[]): void;
}

export const SONAMES = {
  esys: 'libtss2-esys.so.0',
  mu: 'libtss2-mu.so.0',
  tctildr: 'libtss2-tctildr.so.0',
} as const;

/**
 * ESYS functions, by name, as C prototypes koffi parses. ESYS_TR is uint32_t; every structure
 * argument is an opaque `void *` (MU-filled buffer in, ESYS-allocated pointer out).
 */
const ESYS_PROTOTYPES = {
  Esys_Initialize: 'uint32_t Esys_Initialize(_Out_ void **esysContext, void *tcti, void *abiVersion)',
  Esys_Finalize: 'void Esys_Finalize(_Inout_ void **esysContext)',
  Esys_Free: 'void Esys_Free(void *ptr)',
  Esys_GetCapability:
    'uint32_t Esys_GetCapability(void *ctx, uint32_t s1, uint32_t s2, uint32_t s3, uint32_t capability, uint32_t property, uint32_t propertyCount, _Out_ uint8_t *moreData, _Out_ void **capabilityData)',
  Esys_GetRandom:
    'uint32_t Esys_GetRandom(void *ctx, uint32_t s1, uint32_t s2, uint32_t s3, uint16_t bytesRequested, _Out_ void **randomBytes)',
  Esys_PCR_Read:
    'uint32_t Esys_PCR_Read(void *ctx, uint32_t s1, uint32_t s2, uint32_t s3, void *pcrSelectionIn, _Out_ uint32_t *pcrUpdateCounter, _Out_ void **pcrSelectionOut, _Out_ void **pcrValues)',
  Esys_PCR_Extend:
    'uint32_t Esys_PCR_Extend(void *ctx, uint32_t pcrHandle, uint32_t s1, uint32_t s2, uint32_t s3, void *digests)',
  Esys_PCR_Event:
    'uint32_t Esys_PCR_Event(void *ctx, uint32_t pcrHandle, uint32_t s1, uint32_t s2, uint32_t s3, void *eventData, _Out_ void **digests)',
  Esys_CreatePrimary:
    'uint32_t Esys_CreatePrimary(void *ctx, uint32_t primaryHandle, uint32_t s1, uint32_t s2, uint32_t s3, void *inSensitive, void *inPublic, void *outsideInfo, void *creationPCR, _Out_ uint32_t *objectHandle, _Out_ void **outPublic, _Out_ void **creationData, _Out_ void **creationHash, _Out_ void **creationTicket)',
  Esys_ReadPublic:
    'uint32_t Esys_ReadPublic(void *ctx, uint32_t objectHandle, uint32_t s1, uint32_t s2, uint32_t s3, _Out_ void **outPublic, _Out_ void **name, _Out_ void **qualifiedName)',
  Esys_Quote:
    'uint32_t Esys_Quote(void *ctx, uint32_t signHandle, uint32_t s1, uint32_t s2, uint32_t s3, void *qualifyingData, void *inScheme, void *pcrSelect, _Out_ void **quoted, _Out_ void **signature)',
  Esys_NV_ReadPublic:
    'uint32_t Esys_NV_ReadPublic(void *ctx, uint32_t nvIndex, uint32_t s1, uint32_t s2, uint32_t s3, _Out_ void **nvPublic, _Out_ void **nvName)',
  Esys_NV_Read:
    'uint32_t Esys_NV_Read(void *ctx, uint32_t authHandle, uint32_t nvIndex, uint32_t s1, uint32_t s2, uint32_t s3, uint16_t size, uint16_t offset, _Out_ void **data)',
  Esys_StartAuthSession:
    'uint32_t Esys_StartAuthSession(void *ctx, uint32_t tpmKey, uint32_t bind, uint32_t s1, uint32_t s2, uint32_t s3, void *nonceCaller, uint8_t sessionType, void *symmetric, uint16_t authHash, _Out_ uint32_t *sessionHandle)',
  Esys_PolicySecret:
    'uint32_t Esys_PolicySecret(void *ctx, uint32_t authHandle, uint32_t policySession, uint32_t s1, uint32_t s2, uint32_t s3, void *nonceTPM, void *cpHashA, void *policyRef, int32_t expiration, _Out_ void **timeout, _Out_ void **policyTicket)',
  Esys_ActivateCredential:
    'uint32_t Esys_ActivateCredential(void *ctx, uint32_t activateHandle, uint32_t keyHandle, uint32_t s1, uint32_t s2, uint32_t s3, void *credentialBlob, void *secret, _Out_ void **certInfo)',
  Esys_FlushContext: 'uint32_t Esys_FlushContext(void *ctx, uint32_t flushHandle)',
  Esys_TR_FromTPMPublic:
    'uint32_t Esys_TR_FromTPMPublic(void *ctx, uint32_t tpmHandle, uint32_t s1, uint32_t s2, uint32_t s3, _Out_ uint32_t *object)',
  Esys_TR_Close: 'uint32_t Esys_TR_Close(void *ctx, _Inout_ uint32_t *object)',
  Esys_TR_GetName: 'uint32_t Esys_TR_GetName(void *ctx, uint32_t handle, _Out_ void **name)',
} as const;

export type EsysFunctionName = keyof typeof ESYS_PROTOTYPES;

/** The TPM structures the engine moves across the C boundary (libtss2-mu type names). */
export const MU_TYPES = [
  'TPM2B_ATTEST',
  'TPM2B_AUTH',
  'TPM2B_DATA',
  'TPM2B_DIGEST',
  'TPM2B_ENCRYPTED_SECRET',
  'TPM2B_EVENT',
  'TPM2B_ID_OBJECT',
  'TPM2B_MAX_NV_BUFFER',
  'TPM2B_NAME',
  'TPM2B_NV_PUBLIC',
  'TPM2B_PUBLIC',
  'TPM2B_SENSITIVE_CREATE',
  'TPML_DIGEST',
  'TPML_DIGEST_VALUES',
  'TPML_PCR_SELECTION',
  'TPMS_CAPABILITY_DATA',
  'TPMT_SIGNATURE',
  'TPMT_SIG_SCHEME',
  'TPMT_SYM_DEF',
] as const;

export type MuType = (typeof MU_TYPES)[number];

export interface TssLibrary {
  esys: Record<EsysFunctionName, NativeFunction>;
  marshal: Record<MuType, NativeFunction>;
  unmarshal: Record<MuType, NativeFunction>;
  tctiInitialize: NativeFunction;
  tctiFinalize: NativeFunction;
}

let loaded: TssLibrary | undefined;

/** The bound libraries; TPM_UNAVAILABLE when tpm2-tss is not installed. */
export function tss(): TssLibrary {
  if (loaded) return loaded;
  // tpm2-tss logs warnings and errors to stderr by itself (even for an NV index that is
  // merely absent); the engine reports errors as typed exceptions instead. TSS2_LOG set by
  // the user (e.g. `esys+debug`) still wins. tpm2-tss reads it lazily from the C environment,
  // which process.env writes through to.
  process.env.TSS2_LOG ??= 'all+none';
  let esysLib, muLib, tctiLib;
  try {
    esysLib = koffi.load(SONAMES.esys);
    muLib = koffi.load(SONAMES.mu);
    tctiLib = koffi.load(SONAMES.tctildr);
  } catch (cause) {
    throw new SextantError({
      code: 'TPM_UNAVAILABLE',
      message: `tpm2-tss is not installed (${Object.values(SONAMES).join(', ')}): ${(cause as Error).message}`,
      cause,
    });
  }
  const esys = {} as Record<EsysFunctionName, NativeFunction>;
  for (const [name, proto] of Object.entries(ESYS_PROTOTYPES)) {
    esys[name as EsysFunctionName] = esysLib.func(proto) as NativeFunction;
  }
  const marshal = {} as Record<MuType, NativeFunction>;
  const unmarshal = {} as Record<MuType, NativeFunction>;
  for (const t of MU_TYPES) {
    marshal[t] = muLib.func(`uint32_t Tss2_MU_${t}_Marshal(void *src, void *buffer, size_t bufferSize, _Inout_ size_t *offset)`) as NativeFunction;
    unmarshal[t] = muLib.func(`uint32_t Tss2_MU_${t}_Unmarshal(void *buffer, size_t bufferSize, _Inout_ size_t *offset, void *dest)`) as NativeFunction;
  }
  loaded = {
    esys,
    marshal,
    unmarshal,
    tctiInitialize: tctiLib.func('uint32_t Tss2_TctiLdr_Initialize(const char *nameConf, _Out_ void **context)') as NativeFunction,
    tctiFinalize: tctiLib.func('void Tss2_TctiLdr_Finalize(_Inout_ void **context)') as NativeFunction,
  };
  return loaded;
}
