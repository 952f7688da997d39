import { SextantError } from '../../lib/errors.js';
import { isHclReport, parseHclReport, type HclReport } from './hcl.js';
import { SNP_REPORT_SIZE, parseSnpReport, type SnpReport } from './report.js';

/**
 * What a node sends as SNP evidence: a raw report (from /dev/sev-guest or configfs-tsm, as on
 * AWS and GCP) or Azure's HCL report read from the vTPM. Told apart by the HCL magic; anything
 * else must be exactly one report.
 */
export type SnpEvidence =
  | { kind: 'snp'; reportBytes: Uint8Array; report: SnpReport }
  | { kind: 'azure-hcl'; reportBytes: Uint8Array; report: SnpReport; hcl: HclReport };

export function decodeEvidence(bytes: Uint8Array): SnpEvidence {
  if (isHclReport(bytes)) {
    const hcl = parseHclReport(bytes);
    return { kind: 'azure-hcl', reportBytes: hcl.snpReport, report: parseSnpReport(hcl.snpReport), hcl };
  }
  if (bytes.length !== SNP_REPORT_SIZE) {
    throw new SextantError({
      code: 'SNP_REPORT_MALFORMED',
      message: `${bytes.length} bytes: neither an SNP report (${SNP_REPORT_SIZE} bytes) nor an Azure HCL report ("HCLA" header)`,
    });
  }
  return { kind: 'snp', reportBytes: bytes, report: parseSnpReport(bytes) };
}
