import test from 'ava';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HCL_REQUEST_NV_INDEX } from '../../../agent/attest/snp-evidence.js';
import { isFinalRefusal } from '../../../agent/attest/transport.js';
import { resolveConfig, DEFAULTS, type AgentConfig } from '../../../agent/config/config.js';
import { snpSourceFor } from '../../../agent/run/snp-source.js';
import { HCL_NV_INDEX, runtimeReportData, type HclNv } from '../../../attestation/snp/hcl.js';
import { hash, toHex } from '../../../lib/bytes.js';
import { akReportData } from '../../../attestation/snp/binding.js';
import { SextantError } from '../../../lib/errors.js';
import { hclAround, makeTestSnpHierarchy, signReport, type TestSnpHierarchy } from '../../helpers/snp-test-hierarchy.js';
import { tempDir } from '../disk/images.js';

// How the agent run's attest step builds its SNP evidence source from attestation.* (agent/run/snp-source.ts).
// The NV stand-in here is a map; the swtpm path is test/integration/agent-run-snp.test.ts.

let dir: string;
let h: TestSnpHierarchy;
test.before(async () => {
  const d = await tempDir();
  dir = d.dir;
  h = await makeTestSnpHierarchy(dir);
});

const att = (o: Partial<AgentConfig['attestation']>): AgentConfig['attestation'] => ({ ...DEFAULTS.attestation, ...o });
const azure = (o: Partial<AgentConfig['attestation']> = {}) => att({ variant: 'azure-sev-snp', vcek: h.files.vcek, chain: [h.files.chain], ...o });
const UNAVAILABLE = { code: 'SNP_EVIDENCE_UNAVAILABLE' };

function nvStandIn(init: Record<number, Uint8Array>): HclNv & { writes: [number, Buffer][] } {
  const writes: [number, Buffer][] = [];
  return {
    writes,
    nvWrite: async (i, d) => void writes.push([i, Buffer.from(d)]),
    nvReadAll: async (i) => {
      if (!(i in init)) throw new SextantError({ code: 'TPM_RC', message: `TPM_RC_HANDLE: index 0x${i.toString(16)} not defined` });
      return { data: init[i] };
    },
  };
}

test('qemu-vtpm collects no SNP evidence', async (t) => {
  t.is(await snpSourceFor(DEFAULTS.attestation, undefined), undefined);
});

test('an unreadable or certificate-less VCEK/chain file is SNP_EVIDENCE_UNAVAILABLE, before the TPM is touched', async (t) => {
  const nv = nvStandIn({});
  await t.throwsAsync(snpSourceFor(azure({ vcek: path.join(dir, 'missing.der') }), nv), { ...UNAVAILABLE, message: /attestation\.vcek .*missing\.der/ });
  const junk = path.join(dir, 'junk.pem');
  await writeFile(junk, 'not a certificate\n');
  await t.throwsAsync(snpSourceFor(azure({ vcek: junk }), nv), UNAVAILABLE);
  await t.throwsAsync(snpSourceFor(azure({ chain: [junk] }), nv), { ...UNAVAILABLE, message: /attestation\.chain/ });
});

test('azure-sev-snp: no HCL index, an empty one or no NV access is SNP_EVIDENCE_UNAVAILABLE; with a report, collect writes the request and sends report_size bytes with DER certificates', async (t) => {
  await t.throwsAsync(snpSourceFor(azure(), nvStandIn({})), { ...UNAVAILABLE, message: /0x1400001/ });
  await t.throwsAsync(snpSourceFor(azure(), nvStandIn({ [HCL_NV_INDEX]: Buffer.alloc(2048) })), { ...UNAVAILABLE, message: /HCLA/ });
  await t.throwsAsync(snpSourceFor(azure(), undefined), UNAVAILABLE);

  const runtime = Buffer.from(JSON.stringify({ keys: [], 'user-data': '00'.repeat(64) }));
  const hcl = hclAround(signReport(h, runtimeReportData(runtime)), runtime, { padTo: 2048 });
  const nv = nvStandIn({ [HCL_NV_INDEX]: hcl });
  const s = (await snpSourceFor(azure(), nv))!;
  t.like(s.detail, { variant: 'azure-sev-snp', source: 'vTPM NV 0x1400001' });
  const m = await s.source.collect({ nonce: Buffer.alloc(32, 7), akPublic: Buffer.alloc(10) });
  const sent = hcl.subarray(0, hcl.readUInt32LE(8));
  t.deepEqual(Buffer.from(m.report, 'base64'), sent);
  t.deepEqual(Buffer.from(m.vcek, 'base64'), h.vcekDer);
  t.is(m.chain?.length, 2, 'the chain PEM split into ASK and ARK DER');
  t.deepEqual(nv.writes.map(([i, d]) => [i, d.length]), [[HCL_REQUEST_NV_INDEX, 64]]);
  t.like(s.detail, { reportBytes: sent.length, reportSha256: toHex(hash('sha256', sent)) });
  // A request write the TPM refuses is permanent too (not retried as transport trouble).
  const refusing: HclNv = { ...nv, nvWrite: async () => Promise.reject(new SextantError({ code: 'TPM_RC', message: 'TPM_RC_NV_LOCKED' })) };
  const e = await t.throwsAsync((await snpSourceFor(azure(), refusing))!.source.collect({ nonce: Buffer.alloc(32), akPublic: Buffer.alloc(1) }), UNAVAILABLE);
  t.true(isFinalRefusal(e));
});

test('aws-sev-snp: no configfs-tsm directory (or a file) is SNP_EVIDENCE_UNAVAILABLE; a directory that is not the kernel\'s fails at outblob (final) after writing the AK binding to inblob', async (t) => {
  const aws = (configfsTsm: string) => att({ variant: 'aws-sev-snp', vcek: h.files.vcek, chain: [], configfsTsm });
  await t.throwsAsync(snpSourceFor(aws(path.join(dir, 'none')), undefined), { ...UNAVAILABLE, message: /none/ });
  await t.throwsAsync(snpSourceFor(aws(h.files.vcek), undefined), { ...UNAVAILABLE, message: /not a directory/ });
  const root = path.join(dir, 'tsm', 'report');
  await mkdir(root, { recursive: true });
  const s = (await snpSourceFor(aws(root), undefined))!;
  t.is(s.detail.source, `configfs-tsm ${root}`);
  const ak = Buffer.from('an AK public area');
  const e = await t.throwsAsync(s.source.collect({ nonce: Buffer.alloc(32), akPublic: ak }), { ...UNAVAILABLE, message: /outblob/ });
  t.true(isFinalRefusal(e));
  // What it asked for: an entry whose inblob is the AK binding (configfs would remove the entry on rmdir; a plain folder keeps it).
  const entries = await readdir(root);
  t.is(entries.length, 1);
  t.deepEqual(await readFile(path.join(root, entries[0], 'inblob')), Buffer.from(akReportData(ak)));
});

test('attestation.configfsTsm: an absolute path, for aws-sev-snp and gcp-sev-snp only', (t) => {
  const base = { keyservice: { url: 'https://10.0.0.2:8443', fingerprint: 'sha256:' + 'ab'.repeat(32) } };
  t.is(resolveConfig({ ...base, attestation: { variant: 'gcp-sev-snp', vcek: '/v.der', configfsTsm: '/tmp/tsm' } }, '').attestation.configfsTsm, '/tmp/tsm');
  t.throws(() => resolveConfig({ ...base, attestation: { variant: 'aws-sev-snp', vcek: '/v.der', configfsTsm: 'tsm' } }, ''), { code: 'CONFIG_INVALID', message: /attestation\.configfsTsm/ });
  t.throws(() => resolveConfig({ ...base, attestation: { variant: 'azure-sev-snp', vcek: '/v.der', configfsTsm: '/tmp/tsm' } }, ''), { code: 'CONFIG_INVALID', message: /only aws-sev-snp and gcp-sev-snp/ });
});
