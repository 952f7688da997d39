import type { SextantErrorCode } from '../../lib/errors.js';
import type { SignerKind } from './certs.js';
import type { SnpReport } from './report.js';
import type { AmdProduct } from './roots.js';
import { tcbBelow, type TcbParts } from './tcb.js';

/**
 * Policy on an authentic report: small pure checks kept apart from the cryptography (as
 * sigstore's policy.ts is), each finding with its stage and code. All findings are collected,
 * so an auditor sees every reason at once; the verifier refuses with the first.
 */
export interface SnpPolicy {
  /** Accepted report versions (default 2, 3, 5). */
  versions?: readonly number[];
  /** Accepted product lines (default: any pinned). */
  products?: readonly AmdProduct[];
  /** Accepted signing keys (default VCEK and VLEK). */
  signers?: readonly SignerKind[];
  /** Allow a guest that may be associated with a migration agent (default false). Debugging is never allowed. */
  allowMigrationAgent?: boolean;
  /** Allow SMT enabled on the host (default true: the clouds run with SMT). */
  allowSmt?: boolean;
  /** Required VMPL of the report request (Azure's paravisor requests at VMPL 0). */
  vmpl?: number;
  /** Minimum reported TCB per component. */
  minTcb?: Partial<TcbParts>;
  /** Accepted launch measurements (hex); unchecked when absent. */
  measurements?: readonly string[];
  /** Accepted ID-key digests (hex); unchecked when absent (Azure: the firmware measurement is not predictable). */
  idKeyDigests?: readonly string[];
}

export const POLICY_STAGES = ['guest-policy', 'tcb-minimum', 'measurement', 'id-key'] as const;
export type PolicyStage = (typeof POLICY_STAGES)[number];

export interface PolicyFinding {
  stage: PolicyStage;
  code: SextantErrorCode;
  message: string;
}

export function policyFindings(r: SnpReport, policy: SnpPolicy): PolicyFinding[] {
  const out: PolicyFinding[] = [];
  const guest = (message: string): void => void out.push({ stage: 'guest-policy', code: 'SNP_POLICY_REFUSED', message });
  if (r.policy.debug) guest('guest policy allows debugging (bit 19): the host can read and write guest memory');
  if (r.policy.migrateMa && !policy.allowMigrationAgent) guest('guest policy allows a migration agent (bit 18)');
  if (policy.allowSmt === false && r.platformInfo.smtEnabled) guest('SMT is enabled on the host and not allowed');
  if (policy.vmpl !== undefined && r.vmpl !== policy.vmpl) guest(`report requested at VMPL ${r.vmpl}, expected ${policy.vmpl}`);
  if (policy.minTcb) {
    const min = policy.minTcb;
    const low = tcbBelow(r.reportedTcb, min);
    if (low.length > 0) {
      out.push({
        stage: 'tcb-minimum',
        code: 'SNP_TCB_TOO_OLD',
        message: `reported TCB below the minimum in ${low.map((c) => `${c} (${r.reportedTcb[c] ?? 'absent'} < ${min[c]})`).join(', ')}`,
      });
    }
  }
  if (policy.measurements && !policy.measurements.some((m) => m.toLowerCase() === r.measurement)) {
    out.push({ stage: 'measurement', code: 'SNP_MEASUREMENT_UNKNOWN', message: `launch measurement ${r.measurement} is not in the accepted list` });
  }
  if (policy.idKeyDigests && !policy.idKeyDigests.some((m) => m.toLowerCase() === r.idKeyDigest)) {
    out.push({ stage: 'id-key', code: 'SNP_ID_KEY_UNKNOWN', message: `ID-key digest ${r.idKeyDigest} is not in the accepted list` });
  }
  return out;
}

/** The policy stages that apply under `policy` (guest policy always). */
export function policyStages(policy: SnpPolicy): PolicyStage[] {
  return POLICY_STAGES.filter(
    (s) => s === 'guest-policy' || (s === 'tcb-minimum' && policy.minTcb) || (s === 'measurement' && policy.measurements) || (s === 'id-key' && policy.idKeyDigests),
  );
}
