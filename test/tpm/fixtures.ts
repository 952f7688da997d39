/** Loads the real-TPM fixtures made by scripts/tpm/make-quote-fixtures.sh. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES } from '../helpers/paths.js';
import { unmarshal } from '../../tpm/codec.js';
import { TPM2B_PUBLIC } from '../../tpm/structures.js';
import type { PcrBanks } from '../../measurements/pcr/extend.js';
import { DIGEST_SIZE, type HashAlg } from '../../lib/bytes.js';

export const TPM_FIXTURES = path.join(FIXTURES, 'tpm');

export function fixture(name: string): Buffer {
  return readFileSync(path.join(TPM_FIXTURES, name));
}

export function fixturePublic(name: string) {
  return unmarshal(TPM2B_PUBLIC, fixture(name));
}

export const QUOTE_NAMES = ['ak-ecc', 'ak-rsassa', 'ak-rsapss'] as const;
export type QuoteName = (typeof QUOTE_NAMES)[number];

export function quoteNonce(): Buffer {
  return Buffer.from(fixture('quote-nonce.hex').toString('utf8').trim(), 'hex');
}

/** tpm2-tools selection string ("sha1:0,7+sha256:0,1") as bank -> indices, in order. */
export function parseToolSelection(s: string): [HashAlg, number[]][] {
  return s
    .trim()
    .split('+')
    .map((part) => {
      const [bank, list] = part.split(':');
      return [bank as HashAlg, list.split(',').map(Number)];
    });
}

/** The PCR values of a quote fixture (tpm2_pcrread -o: raw digests in selection order). */
export function quotePcrs(name: QuoteName): PcrBanks {
  const raw = fixture(`quote-${name}.pcrs`);
  const out: PcrBanks = {};
  let at = 0;
  for (const [bank, indices] of parseToolSelection(fixture(`quote-${name}.selection`).toString())) {
    const values: Record<string, string> = {};
    for (const i of indices) {
      values[String(i)] = raw.subarray(at, at + DIGEST_SIZE[bank]).toString('hex');
      at += DIGEST_SIZE[bank];
    }
    out[bank] = values;
  }
  if (at !== raw.length) throw new Error(`quote-${name}.pcrs has ${raw.length - at} extra bytes`);
  return out;
}
