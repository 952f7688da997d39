import { bytesEqual, hash } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import type { QuotedFacts } from './checks.js';

export const QUOTED_PCRS = Array.from({ length: 16 }, (_, i) => i);

/**
 * The quote covers exactly SHA-256 PCRs 0-15, and its pcrDigest equals H(PCR 0 || ... || PCR 15)
 * (hashed with the signature's hash) of the values the agent sent: from here on those values are as good as signed by the TPM.
 */
export function checkPcrDigest(quoted: QuotedFacts, pcrs: Record<string, string>): void {
  const sel = quoted.selection;
  const exact = sel.length === 1 && sel[0].alg === 'sha256' && sel[0].pcrs.length === 16 && sel[0].pcrs.every((p, i) => p === i);
  if (!exact) {
    throw new SextantError({
      code: 'PCR_DIGEST_MISMATCH',
      message: `quote must select sha256 PCRs 0-15, selects ${sel.map((s) => `${s.alg}:${s.pcrs.join(',')}`).join(' ') || 'nothing'}`,
    });
  }
  const values = QUOTED_PCRS.map((i) => Buffer.from(pcrs[String(i)], 'hex'));
  if (!bytesEqual(hash(quoted.signatureHash, ...values), quoted.pcrDigest)) {
    throw new SextantError({ code: 'PCR_DIGEST_MISMATCH', message: 'the PCR values sent do not hash to the quoted pcrDigest' });
  }
}
