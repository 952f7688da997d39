/**
 * The TPM's key derivation functions (Part 1 §11.4.10):
 *  - KDFa: SP800-108 counter mode with HMAC, used to derive the symmetric and HMAC keys of a
 *    credential from its seed;
 *  - KDFe: SP800-56A concatenation KDF (one-step, hash), used to turn an ECDH shared secret
 *    into a seed.
 * A label is a string whose terminating NUL is part of the input ("STORAGE" -> "STORAGE\0").
 * When `bits` is not a multiple of 8 the excess leading bits of the result are cleared.
 */
import { createHash, createHmac } from 'node:crypto';
import type { HashAlg } from '../../lib/bytes.js';
import { fail } from '../../lib/errors.js';

const MAX_BITS = 8 * 1024 * 8;

function labelBytes(label: string | Uint8Array): Uint8Array {
  const b = typeof label === 'string' ? Buffer.from(label, 'latin1') : label;
  if (b.length > 0 && b[b.length - 1] === 0) return b;
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits <= 0 || bits > MAX_BITS) fail('INVALID_ARGUMENT', `KDF output of ${bits} bits`);
}

/**
 * Concatenates block(1), block(2), ... until `bits` bits are produced, then keeps ceil(bits/8)
 * bytes with the excess high bits of byte 0 cleared. Both KDFs are counter-mode constructions.
 */
function counterMode(bits: number, block: (counter: Buffer) => Buffer): Buffer {
  checkBits(bits);
  const blocks: Buffer[] = [];
  for (let i = 1, produced = 0; produced < bits; i++) {
    const b = block(u32(i));
    blocks.push(b);
    produced += b.length * 8;
  }
  const all = Buffer.concat(blocks);
  const out = Buffer.from(all.subarray(0, Math.ceil(bits / 8)));
  if (bits % 8 !== 0) out[0] &= 0xff >> (8 - (bits % 8));
  for (const b of [all, ...blocks]) b.fill(0);
  return out;
}

/** KDFa(hashAlg, key, label, contextU, contextV, bits): HMAC(key, [i] || label || contextU || contextV || [bits]). */
export function kdfa(
  alg: HashAlg,
  key: Uint8Array,
  label: string | Uint8Array,
  contextU: Uint8Array,
  contextV: Uint8Array,
  bits: number,
): Buffer {
  const l = labelBytes(label);
  return counterMode(bits, (i) => createHmac(alg, key).update(i).update(l).update(contextU).update(contextV).update(u32(bits)).digest());
}

/** KDFe(hashAlg, Z, label, partyUInfo, partyVInfo, bits): H([i] || Z || label || partyUInfo || partyVInfo). */
export function kdfe(
  alg: HashAlg,
  z: Uint8Array,
  label: string | Uint8Array,
  partyUInfo: Uint8Array,
  partyVInfo: Uint8Array,
  bits: number,
): Buffer {
  const l = labelBytes(label);
  return counterMode(bits, (i) => createHash(alg).update(i).update(z).update(l).update(partyUInfo).update(partyVInfo).digest());
}
