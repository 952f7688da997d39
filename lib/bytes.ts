import { createHash, timingSafeEqual } from 'node:crypto';
import { fail } from './errors.js';

export type HashAlg = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export const DIGEST_SIZE: Record<HashAlg, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

/** The PCR banks sextant computes, in TCG order (CLI `--bank` choices). */
export const HASH_ALGS = Object.keys(DIGEST_SIZE) as readonly HashAlg[];

export function hash(alg: HashAlg, ...parts: Uint8Array[]): Buffer {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return h.digest();
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string): Buffer {
  if (!/^([0-9a-fA-F]{2})*$/.test(s)) fail('INVALID_ARGUMENT', `not a hex string: ${s.slice(0, 40)}`);
  return Buffer.from(s, 'hex');
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Overwrites a secret in place; call in `finally` once a key is no longer needed. */
export function zeroize(...bufs: (Uint8Array | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}
