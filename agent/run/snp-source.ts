import { readFile, stat } from 'node:fs/promises';
import { hash, toHex } from '../../lib/bytes.js';
import { HCL_NV_INDEX, isHclReport, type HclNv } from '../../attestation/snp/hcl.js';
import { splitCertificates } from '../../attestation/snp/certs.js';
import { azureHclSource, configfsTsm, CONFIGFS_TSM_REPORT, evidenceUnavailable as unavailable, rawReportSource, type SnpCerts, type SnpEvidenceSource } from '../attest/snp-evidence.js';
import type { AgentConfig } from '../config/config.js';

/** What the attest step reports about the SNP evidence it sent (never a secret). */
export interface SnpSentDetail {
  variant: string;
  /** Where the report came from: the vTPM NV index or the configfs-tsm directory. */
  source: string;
  reportBytes?: number;
  /** SHA-256 of the report as sent: the key service's audit record keeps the same (snpReportSha256). */
  reportSha256?: string;
}

async function certFile(file: string, what: string): Promise<Uint8Array[]> {
  const bytes = await readFile(file).catch((e) => unavailable(`cannot read ${what} ${file}`, e));
  try {
    return splitCertificates(bytes, `${what} ${file}`);
  } catch (e) {
    return unavailable(`${what} ${file} holds no usable certificate (DER or PEM)`, e);
  }
}

/** The VCEK/VLEK (first certificate of attestation.vcek) and the chain files' certificates, as DER. */
export async function snpCertsFromConfig(a: AgentConfig['attestation']): Promise<SnpCerts> {
  if (a.vcek === undefined) return unavailable(`attestation.variant ${a.variant} needs attestation.vcek`);
  const [vcek] = await certFile(a.vcek, 'attestation.vcek');
  const chain: Uint8Array[] = [];
  for (const f of a.chain) chain.push(...(await certFile(f, 'attestation.chain')));
  if (chain.length > 4) unavailable(`attestation.chain holds ${chain.length} certificates; the key service takes at most 4 (ASK/ASVK and ARK)`);
  return { vcek, ...(chain.length > 0 && { chain }) };
}

/**
 * The SNP evidence source for the configured variant, after checking the node can give it:
 * azure-sev-snp needs an HCL report in vTPM NV 0x01400001, aws-sev-snp / gcp-sev-snp the
 * configfs-tsm report directory (attestation.configfsTsm, default
 * /sys/kernel/config/tsm/report). qemu-vtpm: none. Anything missing or unreadable is
 * SNP_EVIDENCE_UNAVAILABLE before the key service is asked: no retry can fix it.
 */
export async function snpSourceFor(a: AgentConfig['attestation'], nv: HclNv | undefined): Promise<{ source: SnpEvidenceSource; detail: SnpSentDetail } | undefined> {
  if (a.variant === 'qemu-vtpm') return undefined;
  const certs = await snpCertsFromConfig(a);
  let inner: SnpEvidenceSource;
  let where: string;
  if (a.variant === 'azure-sev-snp') {
    where = `vTPM NV 0x${HCL_NV_INDEX.toString(16)}`;
    if (!nv) return unavailable('this TPM client has no NV access for the HCL report');
    const { data } = await nv.nvReadAll(HCL_NV_INDEX).catch((e) => unavailable(`no HCL report: ${where} cannot be read (is this an Azure confidential VM?)`, e));
    if (!isHclReport(data)) unavailable(`no HCL report: ${where} holds no "HCLA" header`);
    inner = azureHclSource(nv, certs);
  } else {
    const root = a.configfsTsm ?? CONFIGFS_TSM_REPORT;
    where = `configfs-tsm ${root}`;
    const st = await stat(root).catch((e) => unavailable(`no SEV-SNP report interface at ${root} (an SEV-SNP guest with configfs-tsm, Linux 6.7+?)`, e));
    if (!st.isDirectory()) unavailable(`no SEV-SNP report interface: ${root} is not a directory`);
    inner = rawReportSource(configfsTsm(root), certs);
  }
  const detail: SnpSentDetail = { variant: a.variant, source: where };
  return {
    detail,
    source: {
      async collect(ctx) {
        const m = await inner.collect(ctx);
        const report = Buffer.from(m.report, 'base64');
        Object.assign(detail, { reportBytes: report.length, reportSha256: toHex(hash('sha256', report)) });
        return m;
      },
    },
  };
}
