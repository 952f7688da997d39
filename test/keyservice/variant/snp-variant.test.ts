import test, { type ExecutionContext } from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { attest } from '../../../agent/attest/client.js';
import { EngineAttestationTpm } from '../../../attestation/tpm/engine-tpm.js';
import { azureHclSource, rawReportSource, HCL_REQUEST_NV_INDEX, type SnpEvidenceSource } from '../../../agent/attest/snp-evidence.js';
import { HCL_NV_INDEX, runtimeReportData } from '../../../attestation/snp/hcl.js';
import { readAuditRecords } from '../../../keyservice/audit/log.js';
import { akReportData, hclUserData } from '../../../attestation/snp/binding.js';
import { unmarshal } from '../../../tpm/codec.js';
import { publicKeyFromTpmt } from '../../../tpm/public-key.js';
import { TPMT_PUBLIC } from '../../../tpm/structures.js';
import type { KeyServiceConfig } from '../../../keyservice/config.js';
import type { SnpEvidenceMessage } from '../../../attestation/evidence.js';
import { snpEvidence } from '../../helpers/snp-evidence.js';
import { hclAround, makeTestSnpHierarchy, signReport, type TestSnpHierarchy } from '../../helpers/snp-test-hierarchy.js';
import { startSwtpmKeyService, type SwtpmKeyService } from '../../helpers/swtpm-keyservice.js';

// The SNP variants end to end in one process: agent (TPM client on swtpm) -> real HTTPS ->
// key service. The success paths use a self-made AMD-shaped hierarchy configured as a
// test-only root; the real Milan report runs the real chain and is refused at the AK binding.

const DISK = '5a1e0c0d-1b2c-4d3e-8f40-516273849506';
let h: TestSnpHierarchy;
const worlds: SwtpmKeyService[] = [];

async function world(variant: string, testRoot = true): Promise<SwtpmKeyService> {
  const w = await startSwtpmKeyService('ks-snp-', async (dir) => {
    h ??= await makeTestSnpHierarchy(dir);
    return { attestation: { variant, snp: testRoot ? { testOnlyRoot: { cert: h.files.ark, product: 'Milan' } } : {} } } as Partial<KeyServiceConfig>;
  });
  worlds.push(w);
  return w;
}

test.after.always(async () => {
  for (const w of worlds) await w.stop();
});

async function run(w: SwtpmKeyService, snp: SnpEvidenceSource | undefined) {
  const e = await EngineAttestationTpm.open(w.tpm.tcti);
  try {
    return await attest(e, { endpoint: w.ep, diskUuid: DISK, role: 'join', nodeName: 'worker-1', snp, retry: { attempts: 1 } });
  } finally {
    await e.dispose();
  }
}

const certs = () => ({ vcek: h.vcekDer, chain: [h.chainPem] });
/** A source that hands over fixed evidence, after `edit` (one changed byte) if given. */
const fixed = (m: SnpEvidenceMessage): SnpEvidenceSource => ({ collect: async () => m });
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const flip = (b: Uint8Array, at: number): Buffer => {
  const c = Buffer.from(b);
  c[at] ^= 1;
  return c;
};

async function lastRefusal(w: SwtpmKeyService) {
  const recs = await readAuditRecords(path.join(w.dir, 'state', 'audit.log'));
  return recs.filter((r) => r.decision === 'refuse').at(-1) as Record<string, unknown>;
}

async function refused(t: ExecutionContext, w: SwtpmKeyService, snp: SnpEvidenceSource | undefined, code: string, stage: string) {
  // The agent sees the service's code (agent/attest/transport.ts).
  await t.throwsAsync(run(w, snp), { code });
  const r = await lastRefusal(w);
  t.is(r.code, code);
  t.is(r.stage, stage);
  return r;
}

test.serial('aws-sev-snp: a report binding SHA-512(AK public area), signed by the test VCEK, releases the disk key; each changed byte refuses with its code', async (t) => {
  const w = await world('aws-sev-snp');
  // The file stand-in for configfs-tsm: it signs what the agent asks for, as the PSP would.
  const psp = { report: async (rd: Uint8Array) => signReport(h, rd) };
  const r = await run(w, rawReportSource(psp, certs()));
  t.is(r.diskKey.length, 32);
  const recs = await readAuditRecords(path.join(w.dir, 'state', 'audit.log'));
  const rel = recs.find((x) => x.decision === 'release') as Record<string, any>;
  t.is(rel.variant, 'aws-sev-snp');
  t.is(rel.snp.chain.ark.provenance.startsWith('TEST ONLY'), true);
  t.deepEqual(rel.snp.stages.slice(0, 3), ['format', 'chain', 'validity']);
  t.is(rel.snp.report.chipId, h.chipId.toString('hex'));

  // What the agent would send, then one byte changed in each part.
  const e = await EngineAttestationTpm.open(w.tpm.tcti);
  const ak = await e.akPublic();
  await e.dispose();
  const good = await rawReportSource(psp, certs()).collect({ nonce: Buffer.alloc(32), akPublic: ak });
  const report = Buffer.from(good.report, 'base64');
  await refused(t, w, fixed({ ...good, report: b64(flip(report, 0x90)) }), 'SNP_SIGNATURE_INVALID', 'verifySnpEvidence');
  await refused(t, w, fixed({ ...good, report: b64(flip(report, 0x1a0)) }), 'SNP_CHIP_ID_MISMATCH', 'verifySnpEvidence');
  const vcek = Buffer.from(good.vcek, 'base64');
  await refused(t, w, fixed({ ...good, vcek: b64(flip(vcek, vcek.length - 5)) }), 'SNP_CHAIN_INVALID', 'verifySnpEvidence');
  // Another AK: a valid report for a different public area (one changed byte of the AK's).
  const other = signReport(h, akReportData(flip(ak, ak.length - 1)));
  const rec = await refused(t, w, fixed({ ...good, report: b64(other) }), 'VARIANT_AK_NOT_BOUND', 'bindAk');
  t.truthy((rec.snp as { stages: string[] }).stages.includes('signature'));
  await refused(t, w, undefined, 'VARIANT_EVIDENCE_REQUIRED', 'verifySnpEvidence');
});

test.serial('gcp-sev-snp with pinned roots only: the real Milan report passes the real chain and signature, then is refused at the AK binding', async (t) => {
  const w = await world('gcp-sev-snp', false);
  const v = (await snpEvidence()).virtee;
  const rec = await refused(t, w, fixed({ report: b64(v.report), vcek: b64(v.vcek), chain: [b64(v.chain)] }), 'VARIANT_AK_NOT_BOUND', 'bindAk');
  const snp = rec.snp as { stages: string[]; chain: { ark: { commonName: string; sha256: string } } };
  t.deepEqual(snp.stages.slice(0, 6), ['format', 'chain', 'validity', 'signer-binding', 'signature', 'guest-policy']);
  t.is(snp.chain.ark.commonName, 'ARK-Milan');
  t.is(snp.chain.ark.sha256, '69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd');
  // The test root is not accepted by a service that does not name it.
  const psp = { report: async (rd: Uint8Array) => signReport(h, rd) };
  await refused(t, w, rawReportSource(psp, certs()), 'SNP_ROOT_NOT_PINNED', 'verifySnpEvidence');
});

test.serial('azure-sev-snp: the HCL report in vTPM NV 0x01400001 (swtpm) is found, parsed and sent; its HCLAkPub must be the quoting AK', async (t) => {
  const w = await world('azure-sev-snp');
  const e = await EngineAttestationTpm.open(w.tpm.tcti);
  const ak = await e.akPublic();
  await e.dispose();
  const akJwk = { kid: 'HCLAkPub', key_ops: ['sign'], ...publicKeyFromTpmt(unmarshal(TPMT_PUBLIC, ak)).export({ format: 'jwk' }) };
  const hcl = (jwk: object): Buffer => {
    const runtime = Buffer.from(JSON.stringify({ keys: [jwk], 'vm-configuration': { 'secure-boot': true, 'tpm-enabled': true }, 'user-data': '00'.repeat(64) }));
    return hclAround(signReport(h, runtimeReportData(runtime)), runtime, { padTo: 2048 });
  };
  const good = hcl(akJwk);
  // The platform's NV indices, as tpm2-tools defines them on swtpm (whose largest index is 2048 bytes).
  const file = path.join(w.dir, 'hcl.bin');
  await writeFile(file, good);
  await w.ta.tool('tpm2_nvdefine', [`0x${HCL_NV_INDEX.toString(16)}`, '-C', 'o', '-s', String(good.length), '-a', 'ownerread|ownerwrite|authread|authwrite']);
  await w.ta.tool('tpm2_nvwrite', [`0x${HCL_NV_INDEX.toString(16)}`, '-C', 'o', '-i', file]);
  await w.ta.tool('tpm2_nvdefine', [`0x${HCL_REQUEST_NV_INDEX.toString(16)}`, '-C', 'o', '-s', '64', '-a', 'ownerread|ownerwrite|authread|authwrite']);

  let sent: SnpEvidenceMessage | undefined;
  const e2 = await EngineAttestationTpm.open(w.tpm.tcti);
  try {
    const src = azureHclSource(e2.hclNv(), certs());
    const spy: SnpEvidenceSource = { collect: async (c) => (sent = await src.collect(c)) };
    const r = await attest(e2, { endpoint: w.ep, diskUuid: DISK, role: 'join', nodeName: 'worker-1', snp: spy, retry: { attempts: 1 } });
    t.is(r.diskKey.length, 32);
  } finally {
    await e2.dispose();
  }
  // Exactly the report (its size, not the NV index's padding) went out, and the request index holds SHA-512(nonce).
  t.deepEqual(Buffer.from(sent!.report, 'base64'), good.subarray(0, good.readUInt32LE(8)));
  await w.ta.tool('tpm2_nvread', [`0x${HCL_REQUEST_NV_INDEX.toString(16)}`, '-C', 'o', '-o', path.join(w.dir, 'ud.bin')]);
  t.is((await readFile(path.join(w.dir, 'ud.bin'))).length, 64);
  t.is(hclUserData(Buffer.alloc(32)).length, 64);

  // Runtime data naming another AK; runtime data changed after signing.
  const pub = publicKeyFromTpmt(unmarshal(TPMT_PUBLIC, ak));
  const another = pub.asymmetricKeyType === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await refused(t, w, fixed({ ...sent!, report: b64(hcl({ ...another.publicKey.export({ format: 'jwk' }), kid: 'HCLAkPub' })) }), 'VARIANT_AK_NOT_BOUND', 'bindAk');
  // One changed byte of the runtime data (a '0' of user-data becomes '1': still JSON).
  const sentReport = Buffer.from(sent!.report, 'base64');
  const at = sentReport.indexOf('"user-data":"') + 14;
  await refused(t, w, fixed({ ...sent!, report: b64(flip(sentReport, at)) }), 'SNP_RUNTIME_DATA_MISMATCH', 'verifySnpEvidence');
});
