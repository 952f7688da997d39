/**
 * `sextant agent run` with `attestation.variant: azure-sev-snp`, as a process: a real swtpm
 * whose NV index 0x01400001 holds an HCL report made from the test SNP hierarchy
 * (test/helpers/snp-test-hierarchy.ts) around runtime data whose HCLAkPub is this swtpm's AK,
 * a real `sextant keyservice` over HTTPS configured for azure-sev-snp trusting the test ARK
 * (attestation.snp.testOnlyRoot), real cryptsetup on an image file (no device-mapper, as in
 * test/integration/agent-run.test.ts) and the kubeadm stand-in. What a real Azure paravisor
 * does (regenerating the report after the request write) is not modelled: swtpm only stores.
 */
import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HCL_REQUEST_NV_INDEX } from '../../agent/attest/snp-evidence.js';
import { HCL_NV_INDEX, runtimeReportData } from '../../attestation/snp/hcl.js';
import { akReportData } from '../../attestation/snp/binding.js';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import { readAuditRecords } from '../../keyservice/audit/log.js';
import { run } from '../../lib/exec.js';
import { hash, toHex } from '../../lib/bytes.js';
import { unmarshal } from '../../tpm/codec.js';
import { publicKeyFromTpmt } from '../../tpm/public-key.js';
import { TPMT_PUBLIC } from '../../tpm/structures.js';
import { sextant } from '../helpers/cli.js';
import { spawnKeyService, type KeyServiceChild } from '../helpers/keyservice-process.js';
import { FIXTURES } from '../helpers/paths.js';
import { hclAround, makeTestSnpHierarchy, signReport, type TestSnpHierarchy } from '../helpers/snp-test-hierarchy.js';
import { writeAgentRunKeyServiceConfig } from '../helpers/agent-run-keyservice.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { sparseImage } from '../agent/disk/images.js';

let tpm: Swtpm | undefined;
let service: KeyServiceChild | undefined;
let dir: string;
let state: string;
let h: TestSnpHierarchy;
let akPublic: Buffer;

const nvHex = (i: number): string => `0x${i.toString(16)}`;
const tool = (name: string, args: string[]) => run(name, args, { env: tpm!.env });

test.before(async () => {
  tpm = await startSwtpm();
  dir = await mkdtemp(path.join(os.tmpdir(), 'agent-run-snp-'));
  h = await makeTestSnpHierarchy(dir);
  const ks = await writeAgentRunKeyServiceConfig(dir, tpm, { attestation: { variant: 'azure-sev-snp', snp: { testOnlyRoot: { cert: h.files.ark, product: 'Milan' } } } });
  state = ks.stateDir;
  const ksConfig = ks.config;
  service = await spawnKeyService(['--config', ksConfig, '--listen', '127.0.0.1:0']);
  // The AK the agent will quote with (the same persistent AK every open of this swtpm).
  const e = await EngineAttestationTpm.open(tpm.tcti);
  try {
    akPublic = Buffer.from(await e.akPublic());
  } finally {
    await e.dispose();
  }
  // The platform's indices as an Azure CVM has them (swtpm's largest index is 2048 bytes), never written yet.
  await tool('tpm2_nvdefine', [nvHex(HCL_NV_INDEX), '-C', 'o', '-s', '2048', '-a', 'ownerread|ownerwrite|authread|authwrite']);
  await tool('tpm2_nvdefine', [nvHex(HCL_REQUEST_NV_INDEX), '-C', 'o', '-s', '64', '-a', 'ownerread|ownerwrite|authread|authwrite']);
});

test.after.always(async () => {
  await service?.stop();
  await tpm?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** An HCL report (padded to the index) whose runtime data names `jwk` as HCLAkPub, signed by the test VCEK. */
function hclFor(jwk: object): Buffer {
  const runtime = Buffer.from(JSON.stringify({ keys: [{ ...jwk, kid: 'HCLAkPub', key_ops: ['sign'] }], 'vm-configuration': { 'secure-boot': true, 'tpm-enabled': true }, 'user-data': '00'.repeat(64) }));
  return hclAround(signReport(h, runtimeReportData(runtime)), runtime, { padTo: 2048 });
}

async function writeHcl(report: Buffer): Promise<void> {
  const f = path.join(dir, 'hcl.bin');
  await writeFile(f, report);
  await tool('tpm2_nvwrite', [nvHex(HCL_NV_INDEX), '-C', 'o', '-i', f]);
}

interface Node {
  config: string;
  statusFile: string;
  record: string;
}

async function node(name: string, diskUuid: string, attestation: Record<string, unknown>): Promise<Node> {
  const base = path.join(dir, name);
  const n: Node = { config: `${base}.json`, statusFile: `${base}-status.json`, record: `${base}-kubeadm.jsonl` };
  const image = await sparseImage(`${base}.img`);
  await writeFile(
    n.config,
    JSON.stringify({
      keyservice: { url: service!.listening, fingerprint: service!.fingerprint },
      node: { name },
      stateDisk: { device: image, diskUuid, deviceMapper: false, mountpoint: `${base}-mnt`, bindMounts: [] },
      tpm: { tcti: tpm!.tcti },
      join: { kubeadm: path.join(FIXTURES, 'kubeadm-standin/kubeadm'), configPath: `${base}-run/kubeadm-join.yaml`, kubeletPkiDir: `${base}-pki`, startKubelet: ['true'], retryDelayMs: 10 },
      retry: { initialMs: 200, maxMs: 1000 },
      statusFile: n.statusFile,
      attestation,
    }),
  );
  return n;
}

const azure = () => ({ variant: 'azure-sev-snp', vcek: h.files.vcek, chain: [h.files.chain] });

function records(stdout: string): Record<string, any>[] {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
}

const agentRun = (n: Node) => sextant(['agent', 'run', '--config', n.config], { env: { KUBEADM_STANDIN_RECORD: n.record } });
const audit = () => readAuditRecords(path.join(state, 'audit.log')) as Promise<Record<string, any>[]>;

test.serial('the variant names evidence the node lacks: exit 2 at the attest step with SNP_EVIDENCE_UNAVAILABLE, no retry, nothing sent to the key service', async (t) => {
  const before = (await audit()).length;
  // azure-sev-snp with NV 0x01400001 defined but empty (never written).
  const n = await node('empty-nv', '0b1e2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3', azure());
  const r = await agentRun(n);
  t.is(r.exitCode, 2, r.stderr + r.stdout);
  const recs = records(r.stdout);
  t.like(recs.find((x) => x.outcome === 'failed'), { step: 'attest', code: 'SNP_EVIDENCE_UNAVAILABLE' });
  t.is(recs.filter((x) => x.outcome === 'retrying').length, 0);
  t.like(JSON.parse((await sextant(['agent', 'status', '--status-file', n.statusFile, '--json'])).stdout), { outcome: 'failed', lastError: { step: 'attest', code: 'SNP_EVIDENCE_UNAVAILABLE' } });
  // aws-sev-snp whose configfs-tsm directory does not exist.
  const n2 = await node('no-tsm', '1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5', { variant: 'aws-sev-snp', vcek: h.files.vcek, chain: [h.files.chain], configfsTsm: path.join(dir, 'no-such-tsm', 'report') });
  const r2 = await agentRun(n2);
  t.is(r2.exitCode, 2, r2.stderr + r2.stdout);
  t.like(records(r2.stdout).find((x) => x.outcome === 'failed'), { step: 'attest', code: 'SNP_EVIDENCE_UNAVAILABLE' });
  t.is((await audit()).length, before, 'the key service was never asked');
});

test.serial('aws-sev-snp with a configfs-tsm-shaped folder that no kernel serves: the agent asks for SHA-512(swtpm AK public area) in inblob, then stops at the missing outblob with exit 2', async (t) => {
  const root = path.join(dir, 'tsm', 'report');
  await mkdir(root, { recursive: true });
  const n = await node('aws-tsm', '4f5a6b7c-8d9e-4fa0-b1c2-d3e4f5a6b7c8', { variant: 'aws-sev-snp', vcek: h.files.vcek, chain: [h.files.chain], configfsTsm: root });
  const r = await agentRun(n);
  t.is(r.exitCode, 2, r.stderr + r.stdout);
  const recs = records(r.stdout);
  t.like(recs.find((x) => x.outcome === 'failed'), { step: 'attest', code: 'SNP_EVIDENCE_UNAVAILABLE' });
  t.regex(recs.find((x) => x.outcome === 'failed')!.message, /outblob/);
  t.is(recs.filter((x) => x.outcome === 'retrying').length, 0);
  // One entry (configfs would drop it at rmdir; a plain folder keeps it), its inblob the binding the key service checks.
  const entries = await readdir(root);
  t.is(entries.length, 1);
  t.deepEqual(await readFile(path.join(root, entries[0], 'inblob')), Buffer.from(akReportData(akPublic)));
});

test.serial('an HCL report binding another AK: the key service refuses at bindAk with VARIANT_AK_NOT_BOUND; the audit record keeps the decoded report', async (t) => {
  const pub = publicKeyFromTpmt(unmarshal(TPMT_PUBLIC, akPublic));
  const other = pub.asymmetricKeyType === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await writeHcl(hclFor(other.publicKey.export({ format: 'jwk' })));
  const n = await node('other-ak', '2d3e4f5a-6b7c-4d8e-9fa0-b1c2d3e4f5a6', azure());
  const r = await agentRun(n);
  t.is(r.exitCode, 1, r.stderr + r.stdout);
  t.like(records(r.stdout).find((x) => x.outcome === 'failed'), { step: 'attest', code: 'VARIANT_AK_NOT_BOUND' });
  const refusal = (await audit()).filter((x) => x.decision === 'refuse').at(-1)!;
  t.like(refusal, { code: 'VARIANT_AK_NOT_BOUND', stage: 'bindAk', variant: 'azure-sev-snp' });
  t.is(refusal.snp.report.chipId, h.chipId.toString('hex'));
  t.true(refusal.snp.stages.includes('signature'));
});

test.serial('the HCL report binding the swtpm AK: agent run joins with the key the key service released; the release record keeps the decoded report the agent sent', async (t) => {
  const good = hclFor(publicKeyFromTpmt(unmarshal(TPMT_PUBLIC, akPublic)).export({ format: 'jwk' }));
  await writeHcl(good);
  const sent = good.subarray(0, good.readUInt32LE(8));
  const n = await node('azure-node', '3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7', azure());
  const r = await agentRun(n);
  t.is(r.exitCode, 0, r.stderr + r.stdout);
  const recs = records(r.stdout);
  t.deepEqual(recs.filter((x) => x.outcome === 'done').map((x) => x.step), ['config', 'inventory', 'find-disk', 'attest', 'disk', 'lock', 'join', 'done']);
  const att = recs.find((x) => x.step === 'attest' && x.outcome === 'done')!;
  t.like(att, { role: 'join', source: 'keyservice', clusterId: service!.clusterId, snp: { variant: 'azure-sev-snp', source: 'vTPM NV 0x1400001', reportBytes: sent.length } });
  t.is(att.snp.reportSha256, toHex(hash('sha256', sent)), 'exactly the report_size bytes of the index were sent');
  const releases = (await audit()).filter((x) => x.decision === 'release');
  t.is(releases.length, 1, 'the first release of this key service');
  const rel = releases[0];
  t.is(rel.variant, 'azure-sev-snp');
  t.is(rel.snpReportSha256, att.snp.reportSha256);
  t.is(rel.snp.report.chipId, h.chipId.toString('hex'));
  t.true(rel.snp.chain.ark.provenance.startsWith('TEST ONLY'));
  // The agent wrote its report request (SHA-512 of the nonce) to the never-written request index.
  const ud = path.join(dir, 'ud.bin');
  await tool('tpm2_nvread', [nvHex(HCL_REQUEST_NV_INDEX), '-C', 'o', '-o', ud]);
  const request = await readFile(ud);
  t.is(request.length, 64);
  t.false(request.every((b) => b === 0));
  t.like(recs.find((x) => x.step === 'lock'), { lock: 'extended', confirm: { confirmed: true } });
});
