import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';
import { SNP_REPORT_SIZE } from './report.js';

/**
 * Azure's HCL report: what the paravisor (HCL) of an Azure confidential VM writes into vTPM NV
 * index 0x01400001. Layout (Microsoft, "Guest attestation for confidential VMs", attestation
 * report format; also kinvolk/azure-cvm-tooling's az-cvm-vtpm hcl module):
 *
 *   0x000  header, 32 bytes: "HCLA" magic, version, report_size, request_type, status, 3 reserved u32
 *   0x020  hardware report, 1184 bytes (the SNP ATTESTATION_REPORT; a TDX report is shorter and padded)
 *   0x4C0  IGVM request data: data_size, version, report_type (2 SNP, 4 TDX), report_data_hash_type
 *          (1 SHA-256, 2 SHA-384, 3 SHA-512), variable_data_size, then variable_data
 *
 * variable_data is the runtime-data JSON (`{"keys":[{"kid":"HCLAkPub",...}],"vm-configuration":..}`)
 * whose hash the SNP report's report_data starts with. The NV index is larger than the report:
 * bytes after report_size are padding and ignored.
 */
export const HCL_MAGIC = 0x414c4348; // "HCLA" little-endian
export const HCL_NV_INDEX = 0x01400001;

/** The vTPM NV operations the Azure source needs (tpm/client's Tpm has them). */
export interface HclNv {
  nvWrite(nvIndex: number, data: Uint8Array): Promise<void>;
  nvReadAll(nvIndex: number): Promise<{ data: Uint8Array }>;
}
const HEADER_SIZE = 32;
const REQUEST_OFFSET = HEADER_SIZE + SNP_REPORT_SIZE;
const REQUEST_FIXED = 20;
const RUNTIME_OFFSET = REQUEST_OFFSET + REQUEST_FIXED;
/** Runtime data is a few hundred bytes of JSON; this bounds the parse. */
const MAX_RUNTIME_DATA = 64 * 1024;
const REPORT_TYPE_SNP = 2;
const REPORT_TYPE_TDX = 4;
const HASH_TYPES = { 1: 'sha256', 2: 'sha384', 3: 'sha512' } as const;
export type RuntimeHash = (typeof HASH_TYPES)[keyof typeof HASH_TYPES];

export interface HclReport {
  version: number;
  requestType: number;
  status: number;
  /** The SNP report inside (a view into the input). */
  snpReport: Uint8Array;
  hashType: RuntimeHash;
  /** The runtime-data JSON bytes as hashed into report_data. */
  runtimeData: Uint8Array;
  runtimeClaims: RuntimeClaims;
}

export interface Jwk {
  kid: string;
  kty: string;
  [k: string]: unknown;
}

export interface RuntimeClaims {
  keys: Jwk[];
  [k: string]: unknown;
}

function malformed(message: string): never {
  throw new SextantError({ code: 'SNP_HCL_MALFORMED', message: `HCL report: ${message}` });
}

export function isHclReport(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && Buffer.from(bytes.buffer, bytes.byteOffset, 4).readUInt32LE(0) === HCL_MAGIC;
}

export function parseHclReport(bytes: Uint8Array): HclReport {
  if (!isHclReport(bytes)) malformed('no "HCLA" signature');
  if (bytes.length < RUNTIME_OFFSET) malformed(`${bytes.length} bytes, at least ${RUNTIME_OFFSET} expected`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (o: number): number => dv.getUint32(o, true);
  const reportSize = u32(8);
  const reportType = u32(REQUEST_OFFSET + 8);
  if (reportType === REPORT_TYPE_TDX) malformed('holds an Intel TDX report, not an SNP report');
  if (reportType !== REPORT_TYPE_SNP) malformed(`unknown hardware report type ${reportType}`);
  const hashCode = u32(REQUEST_OFFSET + 12);
  const hashType = HASH_TYPES[hashCode as keyof typeof HASH_TYPES];
  if (!hashType) malformed(`unknown report-data hash type ${hashCode}`);
  const dataSize = u32(REQUEST_OFFSET);
  const varSize = u32(REQUEST_OFFSET + 16);
  if (varSize > MAX_RUNTIME_DATA) malformed(`runtime data of ${varSize} bytes (at most ${MAX_RUNTIME_DATA})`);
  if (dataSize !== REQUEST_FIXED + varSize) malformed(`request data size ${dataSize} != ${REQUEST_FIXED} + runtime data size ${varSize}`);
  if (reportSize !== RUNTIME_OFFSET + varSize) malformed(`report size ${reportSize} != ${RUNTIME_OFFSET} + runtime data size ${varSize}`);
  if (bytes.length < reportSize) malformed(`truncated: ${bytes.length} of ${reportSize} bytes`);
  const runtimeData = bytes.subarray(RUNTIME_OFFSET, RUNTIME_OFFSET + varSize);
  return {
    version: u32(4),
    requestType: u32(12),
    status: u32(16),
    snpReport: bytes.subarray(HEADER_SIZE, REQUEST_OFFSET),
    hashType,
    runtimeData,
    runtimeClaims: parseRuntimeClaims(runtimeData),
  };
}

/** The runtime-data JSON: an object with a `keys` array of JWKs, each with `kid` and `kty`. */
export function parseRuntimeClaims(bytes: Uint8Array): RuntimeClaims {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new SextantError({ code: 'SNP_HCL_MALFORMED', message: 'HCL report: runtime data is not UTF-8 JSON', cause });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) malformed('runtime data is not a JSON object');
  const keys = (v as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) malformed('runtime data has no "keys" array');
  for (const [i, k] of keys.entries()) {
    if (typeof k !== 'object' || k === null || typeof k.kid !== 'string' || typeof k.kty !== 'string') {
      malformed(`runtime data key ${i} is not a JWK with "kid" and "kty"`);
    }
  }
  return v as RuntimeClaims;
}

/** The key with this `kid` (Azure: "HCLAkPub" is the vTPM's attestation key, "HCLEkPub" its EK). */
export function findJwk(claims: RuntimeClaims, kid: string): Jwk | undefined {
  return claims.keys.find((k) => k.kid === kid);
}

/**
 * The vTPM attestation key the runtime data carries (`HCLAkPub`), as a public key to compare
 * with the AK that signs the quote. Missing or unusable: SNP_HCL_MALFORMED.
 */
export function hclAkPublicKey(claims: RuntimeClaims): KeyObject {
  const jwk = findJwk(claims, 'HCLAkPub');
  if (!jwk) malformed('runtime data has no HCLAkPub key');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (cause) {
    throw new SextantError({ code: 'SNP_HCL_MALFORMED', message: `HCL report: HCLAkPub is not a usable ${jwk.kty} public key`, cause });
  }
  // node:crypto imports any modulus; a vTPM AK is RSA 2048 or larger (or an EC key).
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType === 'rsa' && (bits ?? 0) < 2048) malformed(`HCLAkPub is a ${bits}-bit RSA key (at least 2048 expected)`);
  return key;
}

/** report_data as the platform fills it for this runtime data: the digest, zero-padded to 64 bytes. */
export function runtimeReportData(runtimeData: Uint8Array, hash: RuntimeHash = 'sha256'): Buffer {
  const out = Buffer.alloc(64);
  createHash(hash).update(runtimeData).digest().copy(out);
  return out;
}
