import { SextantError } from '../../lib/errors.js';
import { checkPcrDigest as checkQuotedDigest } from '../../tpm/quote/verify.js';
import type { QuotedFacts } from './checks.js';

export const QUOTED_PCRS = Array.from({ length: 16 }, (_, i) => i);

/**
 * The protocol's quote covers exactly SHA-256 PCRs 0-15, and its pcrDigest is the digest of
 * the values the node sent (tpm/quote/verify.ts's one PCR-digest check): from here on those
 * values are as good as signed by the TPM.
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
  checkQuotedDigest(quoted.signatureHash, quoted, { sha256: pcrs });
}
