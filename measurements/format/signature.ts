import type { KeyObject } from 'node:crypto';

/**
 * The detached signature format shared by signing and verification, the one `cosign
 * sign-blob` writes: ECDSA over NIST P-256 with SHA-256 of the file's exact bytes, the
 * signature DER-encoded (SEQUENCE { INTEGER r, INTEGER s }) and then base64 (no line
 * breaks when we write; line breaks tolerated when we read, as `openssl base64` wraps).
 */
export const SIGNATURE_HASH = 'sha256';
export const SIGNATURE_CURVE = 'prime256v1';

/** Why a key is not usable for this format, or undefined when it is a P-256 EC key. */
export function p256Problem(key: KeyObject): string | undefined {
  if (key.asymmetricKeyType !== 'ec') return `expected an ECDSA P-256 key, got a ${key.asymmetricKeyType ?? 'symmetric'} key`;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve !== SIGNATURE_CURVE) return `expected an ECDSA P-256 (prime256v1) key, got curve ${curve ?? 'unknown'}`;
  return undefined;
}

export function encodeSignature(der: Uint8Array): string {
  return Buffer.from(der).toString('base64');
}

/**
 * The DER bytes of a signature file's text, or a reason it is malformed. Strict: canonical
 * base64 only (so no two texts decode to the same signature) and strict DER.
 */
export function decodeSignature(text: string): { der: Buffer } | { problem: string } {
  const b64 = text.replace(/\r?\n/g, '');
  if (b64.length === 0) return { problem: 'the signature file is empty' };
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) return { problem: 'the signature is not base64' };
  const der = Buffer.from(b64, 'base64');
  if (der.toString('base64') !== b64) return { problem: 'the signature is not canonical base64' };
  const derProblem = ecdsaDerProblem(der);
  return derProblem ? { problem: derProblem } : { der };
}

/** Checks SEQUENCE { INTEGER r, INTEGER s } with minimal DER encodings for a 256-bit curve. */
function ecdsaDerProblem(der: Buffer): string | undefined {
  const bad = `the signature is not a DER ECDSA signature (${der.length} bytes; truncated or not P-256?)`;
  if (der.length < 8 || der.length > 72 || der[0] !== 0x30 || der[1] !== der.length - 2) return bad;
  let at = 2;
  for (let i = 0; i < 2; i++) {
    if (der[at] !== 0x02) return bad;
    const len = der[at + 1];
    if (len === undefined || len < 1 || len > 33 || at + 2 + len > der.length) return bad;
    const first = der[at + 2];
    const second = der[at + 3];
    if (first & 0x80) return bad; // negative
    if (len > 1 && first === 0 && second !== undefined && !(second & 0x80)) return bad; // not minimal
    at += 2 + len;
  }
  return at === der.length ? undefined : bad;
}
