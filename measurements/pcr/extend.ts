import { DIGEST_SIZE, hash, type HashAlg } from '../../lib/bytes.js';

/** PCR values by bank and index, lowercase hex: the shape of `eventlog replay` and `tpm pcrs`. */
export type PcrBanks = Partial<Record<HashAlg, Record<string, string>>>;

/** TPM2_PCR_Extend: new = H(old || digest). */
export function extend(alg: HashAlg, old: Uint8Array, digest: Uint8Array): Buffer {
  return hash(alg, old, digest);
}

/** The value a reset PCR starts from (PCRs 0-16 and 23 reset to zeros). */
export function zeroPcr(alg: HashAlg): Buffer {
  return Buffer.alloc(DIGEST_SIZE[alg]);
}

/** Folds a list of event digests into the final PCR value, starting from zero (or `initial`). */
export function extendAll(alg: HashAlg, digests: Iterable<Uint8Array>, initial?: Uint8Array): Buffer {
  let v: Buffer = Buffer.from(initial ?? zeroPcr(alg));
  for (const d of digests) v = extend(alg, v, d);
  return v;
}
