import { readFile } from 'node:fs/promises';
import { SextantError, isSextantError } from '../../lib/errors.js';
import { decodeEvidence } from '../../attestation/snp/evidence.js';
import { runtimeReportData } from '../../attestation/snp/hcl.js';
import type { SnpReport } from '../../attestation/snp/report.js';
import { formatTcb } from '../../attestation/snp/tcb.js';
import { verifySnpAuthenticity, type PolicyFinding, type SnpAttestedState } from '../../attestation/snp/verify.js';
import { requireStr } from '../args.js';
import { bool, str, type CommandSpec } from '../command.js';

interface SnpVerifyResult {
  /** True when the signature and the chain to a pinned AMD root hold (and report_data binds --runtime-data). */
  ok: boolean;
  code?: string;
  message?: string;
  evidence?: 'snp' | 'azure-hcl';
  report?: SnpReport;
  attested?: Omit<SnpAttestedState, 'report'>;
  /** Default-policy findings on an authentic report (debug, migration agent); fatal with --enforce-policy. */
  policy: PolicyFinding[];
  policyEnforced: boolean;
}

async function readInput(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (cause) {
    throw new SextantError({ code: 'FILE_NOT_FOUND', message: `${what} ${file}: ${(cause as Error).message}`, cause });
  }
}

/** Evidence as a file holds it: binary, or the same bytes as hex or base64 text (how reports are often stored). */
function evidenceBytes(raw: Buffer): Buffer {
  const text = raw.toString('latin1').trim();
  if (/^([0-9a-fA-F]{2})+$/.test(text)) return Buffer.from(text, 'hex');
  if (text.length >= 1500 && /^[A-Za-z0-9+/\r\n]+={0,2}$/.test(text)) return Buffer.from(text, 'base64');
  return raw;
}

function parseAt(s: string | undefined): Date | undefined {
  if (s === undefined) return undefined;
  const d = new Date(s);
  if (!/^\d{4}-\d{2}-\d{2}/.test(s) || Number.isNaN(d.getTime())) {
    throw new SextantError({ code: 'USAGE', message: `--at must be an ISO 8601 time, e.g. 2025-06-01T00:00:00Z, not "${s}"` });
  }
  return d;
}

const yes = (b: boolean): string => (b ? 'yes' : 'no');

function renderReport(r: SnpReport): string[] {
  const p = r.policy;
  const pi = r.platformInfo;
  return [
    `version          ${r.version}${r.cpuid ? ` (CPUID family 0x${r.cpuid.family.toString(16)} model 0x${r.cpuid.model.toString(16)} stepping ${r.cpuid.stepping})` : ''}`,
    `signing key      ${r.signingKey.toUpperCase()}${r.maskChipKey ? ' (chip key masked)' : ''}, algorithm ${r.signatureAlgo}`,
    `guest policy     ${p.raw} abi ${p.abiMajor}.${p.abiMinor} debug=${yes(p.debug)} migrate-ma=${yes(p.migrateMa)} smt=${yes(p.smt)} single-socket=${yes(p.singleSocket)}`,
    `platform info    ${pi.raw} smt=${yes(pi.smtEnabled)} tsme=${yes(pi.tsmeEnabled)} ecc=${yes(pi.eccEnabled)}`,
    `guest svn, vmpl  ${r.guestSvn}, ${r.vmpl}`,
    `reported TCB     ${formatTcb(r.reportedTcb)}`,
    `current TCB      ${formatTcb(r.currentTcb)}`,
    `committed TCB    ${formatTcb(r.committedTcb)}`,
    `launch TCB       ${formatTcb(r.launchTcb)}`,
    `firmware         ${r.currentVersion.major}.${r.currentVersion.minor}.${r.currentVersion.build} (committed ${r.committedVersion.major}.${r.committedVersion.minor}.${r.committedVersion.build})`,
    `measurement      ${r.measurement}`,
    `host data        ${r.hostData}`,
    `id-key digest    ${r.idKeyDigest}`,
    `author key       ${r.authorKeyDigest}${r.authorKeyEn ? '' : ' (not enabled)'}`,
    `family id        ${r.familyId}`,
    `image id         ${r.imageId}`,
    `report_data      ${r.reportData}`,
    `report id        ${r.reportId}`,
    `chip id          ${r.chipId}`,
  ];
}

const verify: CommandSpec<SnpVerifyResult> = {
  path: ['attestation', 'snp', 'verify'],
  summary: 'verify an AMD SEV-SNP attestation report (raw, or inside an Azure HCL report) against the pinned AMD roots',
  args: 'REPORT',
  description: `REPORT is a raw 1184-byte SNP report (binary, hex or base64) or the Azure HCL report read from vTPM NV index
0x01400001 (detected by its "HCLA" header; its runtime data must hash into report_data). --vcek is the VCEK or
VLEK certificate (DER or PEM; a PEM bundle may also carry the chain). The chain (ASK or ASVK, and ARK) must end
in an AMD root pinned by fingerprint in attestation/snp/roots.ts.
Exit 0 only when the signature and the chain hold (and, with --runtime-data, report_data is its SHA-256
zero-padded); 1 with the failing stage's code otherwise. Certificates are judged now unless --at gives the time
recorded evidence was taken. Policy findings (debug allowed, migration agent) are printed; --enforce-policy
makes them fatal.`,
  options: {
    vcek: { type: 'string', valueName: 'CERT', description: 'VCEK or VLEK certificate, DER or PEM', required: true },
    chain: { type: 'string', valueName: 'ASK_ARK.pem', description: 'ASK (or ASVK) and ARK, PEM or DER (default: the rest of the --vcek file)' },
    'runtime-data': { type: 'string', valueName: 'FILE', description: 'report_data must be SHA-256 of this file, zero-padded to 64 bytes' },
    crl: { type: 'string', valueName: 'FILE', description: "AMD's CRL for the product (DER or PEM), checked against the ARK" },
    at: { type: 'string', valueName: 'TIME', description: 'judge certificate validity at this ISO 8601 time (default now)' },
    'enforce-policy': { type: 'boolean', description: 'refuse (exit 1) on policy findings too' },
  },
  async run(ctx) {
    const evidence = evidenceBytes(await readInput(ctx.positionals[0], 'report'));
    const vcekFile = requireStr(ctx.values, 'vcek');
    const signerCert = await readInput(vcekFile, 'certificate');
    const chainFile = str(ctx.values, 'chain');
    const chain = chainFile ? await readInput(chainFile, 'chain') : signerCert;
    const rdFile = str(ctx.values, 'runtime-data');
    const expectedReportData = rdFile ? runtimeReportData(await readInput(rdFile, 'runtime data')) : undefined;
    const crlFile = str(ctx.values, 'crl');
    const crl = crlFile ? await readInput(crlFile, 'CRL') : undefined;
    const at = parseAt(str(ctx.values, 'at'));
    const enforce = bool(ctx.values, 'enforce-policy');
    // Malformed evidence is bad input (exit 2); decoding first also gives the report to print on refusal.
    const decoded = decodeEvidence(evidence);
    const base = { evidence: decoded.kind, report: decoded.report, policyEnforced: enforce };
    try {
      const { state, findings } = verifySnpAuthenticity(evidence, {
        signerCert,
        chain,
        ...(at && { at }),
        ...(crl && { crl }),
        ...(expectedReportData && { expectedReportData }),
      });
      const { report: _r, ...attested } = state;
      const refused = enforce ? findings[0] : undefined;
      return { ...base, ok: !refused, ...(refused && { code: refused.code, message: refused.message }), attested, policy: findings };
    } catch (e) {
      if (!isSextantError(e) || e.isInputError) throw e;
      return { ...base, ok: false, code: e.code, message: e.message, policy: [] };
    }
  },
  render(r) {
    const lines = [`evidence         ${r.evidence === 'azure-hcl' ? 'Azure HCL report holding an SNP report' : 'SNP report'}`];
    if (r.report) lines.push(...renderReport(r.report));
    const a = r.attested;
    if (a) {
      const s = a.signer;
      lines.push(
        `signer           ${s.kind.toUpperCase()} ${s.productName}${s.cspId ? ` issued to ${s.cspId}` : ''}, valid ${s.notBefore} - ${s.notAfter}`,
        `chain            ${a.chain.intermediate.commonName} <- ${a.chain.ark.commonName} (pinned sha256 ${a.chain.ark.sha256})`,
        `checked at       ${a.at}${a.revocation === 'checked' ? ', CRL checked' : ', no CRL configured'}`,
        `stages passed    ${a.stages.join(', ')}`,
      );
      if (a.runtime?.akPub) lines.push(`runtime AK       HCLAkPub ${a.runtime.akPub.kty} (bound by report_data)`);
    }
    for (const f of r.policy) lines.push(`policy           ${f.code}: ${f.message}${r.policyEnforced ? '' : ' (not enforced)'}`);
    lines.push(r.ok ? 'verdict          VERIFIED: signature and chain to a pinned AMD root hold' : `verdict          REFUSED ${r.code}: ${r.message}`);
    return lines.join('\n');
  },
  exitCode: (r) => (r.ok ? 0 : 1),
};

export const attestationCommands: CommandSpec<any>[] = [verify];
