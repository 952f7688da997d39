import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isSextantError, SextantError } from '../../lib/errors.js';
import { HCL_NV_INDEX, isHclReport, type HclNv } from '../../attestation/snp/hcl.js';
import { SNP_REPORT_SIZE } from '../../attestation/snp/report.js';
import { MAX_SNP_REPORT_BYTES } from '../../protocol/validate.js';
import type { SnpEvidenceMessage } from '../../attestation/evidence.js';
import { akReportData, hclUserData } from '../../attestation/snp/binding.js';

/**
 * Where the node's SEV-SNP evidence comes from, per variant (docs/attestation-variants.md):
 *
 * - azure-sev-snp: the paravisor's HCL report in vTPM NV index 0x01400001. The platform makes
 *   a fresh one after the guest writes 64 bytes of user data to the report request index
 *   0x01400002; sextant writes SHA-512(nonce). (On swtpm that write is only stored.)
 * - aws-sev-snp, gcp-sev-snp: a raw report from configfs-tsm (/sys/kernel/config/tsm/report,
 *   Linux 6.7+) with report_data = SHA-512 of the AK's TPMT_PUBLIC, which is what the key
 *   service checks (attestation/snp/bind-ak.ts with attestation/snp/binding.ts akReportData). /dev/sev-guest's ioctl is
 *   not wrapped: configfs-tsm is the kernel's interface for it.
 *
 * The VCEK/VLEK and chain come from the cloud (Azure THIM, the extended report's certificate
 * table) and are handed in as files here.
 */
export interface SnpEvidenceSource {
  collect(ctx: { nonce: Uint8Array; akPublic: Uint8Array }): Promise<SnpEvidenceMessage>;
}

export const HCL_REQUEST_NV_INDEX = 0x01400002;

/** The certificates that accompany a report: VCEK/VLEK DER, chain DER each. */
export interface SnpCerts {
  vcek: Uint8Array;
  chain?: Uint8Array[];
}

function withCerts(report: Uint8Array, certs: SnpCerts): SnpEvidenceMessage {
  if (report.length > MAX_SNP_REPORT_BYTES) throw new SextantError({ code: 'SNP_REPORT_MALFORMED', message: `${report.length} bytes of SNP evidence (at most ${MAX_SNP_REPORT_BYTES})` });
  return {
    report: Buffer.from(report).toString('base64'),
    vcek: Buffer.from(certs.vcek).toString('base64'),
    ...(certs.chain && { chain: certs.chain.map((c) => Buffer.from(c).toString('base64')) }),
  };
}



/** A local failure to collect evidence: no retry can fix it (the agent's attest step stops, `agent run` exits 2). */
export function evidenceUnavailable(what: string, cause?: unknown): never {
  if (isSextantError(cause, 'SNP_EVIDENCE_UNAVAILABLE')) throw cause;
  const why = cause === undefined ? '' : `: ${isSextantError(cause) ? `${cause.code}: ${cause.message}` : ((cause as Error)?.message ?? String(cause))}`;
  throw new SextantError({ code: 'SNP_EVIDENCE_UNAVAILABLE', message: what + why, cause });
}
const unavailable = evidenceUnavailable;

const hex = (i: number): string => `0x${i.toString(16)}`;

export function azureHclSource(nv: HclNv, certs: SnpCerts): SnpEvidenceSource {
  return {
    async collect({ nonce }) {
      await nv.nvWrite(HCL_REQUEST_NV_INDEX, hclUserData(nonce)).catch((e) => unavailable(`writing the HCL report request to vTPM NV ${hex(HCL_REQUEST_NV_INDEX)}`, e));
      const { data } = await nv.nvReadAll(HCL_NV_INDEX).catch((e) => unavailable(`reading the HCL report from vTPM NV ${hex(HCL_NV_INDEX)}`, e));
      if (!isHclReport(data)) throw new SextantError({ code: 'SNP_HCL_MALFORMED', message: `NV index 0x${HCL_NV_INDEX.toString(16)} holds no HCL report ("HCLA" header)` });
      // The index is larger than the report; the report says how much of it counts.
      const size = Buffer.from(data.buffer, data.byteOffset, data.byteLength).readUInt32LE(8);
      if (size > data.length) throw new SextantError({ code: 'SNP_HCL_MALFORMED', message: `HCL report of ${size} bytes in an NV index of ${data.length}` });
      return withCerts(data.subarray(0, size), certs);
    },
  };
}

/** A raw report for given report_data: configfs-tsm on a guest, a file stand-in in tests. */
export interface SnpReportProvider {
  report(reportData: Uint8Array): Promise<Uint8Array>;
}

/**
 * configfs-tsm (Documentation/ABI/testing/configfs-tsm): mkdir an entry, write inblob (64 bytes
 * report_data), read outblob (the report), rmdir. `root` is /sys/kernel/config/tsm/report.
 */
export const CONFIGFS_TSM_REPORT = '/sys/kernel/config/tsm/report';

export function configfsTsm(root = CONFIGFS_TSM_REPORT): SnpReportProvider {
  return {
    async report(reportData) {
      const entry = path.join(root, `sextant-${process.pid}-${Date.now()}`);
      try {
        await mkdir(entry);
      } catch (cause) {
        unavailable(`no SEV-SNP report interface at ${root} (configfs-tsm)`, cause);
      }
      try {
        await writeFile(path.join(entry, 'inblob'), reportData).catch((e) => unavailable(`configfs-tsm ${entry}/inblob`, e));
        const out = await readFile(path.join(entry, 'outblob')).catch((e) => unavailable(`configfs-tsm ${entry}/outblob`, e));
        if (out.length !== SNP_REPORT_SIZE) throw new SextantError({ code: 'SNP_REPORT_MALFORMED', message: `configfs-tsm returned ${out.length} bytes, an SNP report is ${SNP_REPORT_SIZE}` });
        return out;
      } finally {
        await rmdir(entry).catch(() => undefined);
      }
    },
  };
}

/** aws-sev-snp / gcp-sev-snp: a report whose report_data binds the AK (attestation/snp/binding.ts). */
export function rawReportSource(provider: SnpReportProvider, certs: SnpCerts): SnpEvidenceSource {
  return {
    async collect({ akPublic }) {
      return withCerts(await provider.report(akReportData(akPublic)), certs);
    },
  };
}
