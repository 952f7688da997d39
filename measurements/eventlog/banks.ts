/**
 * Hashing for every bank a log may declare. lib/bytes.ts covers the four SHA banks the rest of
 * sextant uses; an event log may also carry SM3 or SHA-3 banks (TPMs for some markets, newer
 * firmware), which node:crypto hashes too when its OpenSSL has them.
 */
import { createHash, getHashes } from 'node:crypto';
import { BANKS_BY_ID } from './types.js';

let available: ReadonlySet<string> | undefined;

/** A function hashing the concatenation of its parts in bank `algId`, or undefined when this Node cannot. */
export function bankHash(algId: number): ((...parts: Uint8Array[]) => Buffer) | undefined {
  const bank = BANKS_BY_ID.get(algId);
  if (!bank) return undefined;
  available ??= new Set(getHashes());
  if (!available.has(bank.nodeHash)) return undefined;
  return (...parts) => {
    const h = createHash(bank.nodeHash);
    for (const p of parts) h.update(p);
    return h.digest();
  };
}

/** Why a declared bank cannot be replayed (for the output), given that bankHash returned undefined. */
export function whyNotReplayable(algId: number, alg: string): string {
  const bank = BANKS_BY_ID.get(algId);
  return bank
    ? `this Node's OpenSSL has no ${bank.nodeHash} hash, so the ${alg} bank cannot be replayed`
    : `TPM_ALG_ID 0x${algId.toString(16).padStart(4, '0')} is not a hash algorithm sextant knows, so its bank cannot be replayed`;
}
