import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { attest } from '../../agent/attest/client.js';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import { rawReportSource } from '../../agent/attest/snp-evidence.js';
import { readAuditRecords } from '../../keyservice/audit/log.js';
import { measurementsKeys, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { spawnKeyService, type KeyServiceChild } from '../helpers/keyservice-process.js';
import { makeTestSnpHierarchy, signReport, type TestSnpHierarchy } from '../helpers/snp-test-hierarchy.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';

// The real `sextant keyservice` process with `--attestation-variant aws-sev-snp` and a config
// file naming a test-only AMD root: the agent's TPM client on swtpm, real HTTPS, a report
// signed by the self-made VCEK binding the swtpm AK -> the disk key is released.

const DISK = '5a1e0c0d-1b2c-4d3e-8f40-516273849506';
let tpm: Swtpm;
let dir: string;
let h: TestSnpHierarchy;
let svc: KeyServiceChild;

test.before(async () => {
  tpm = await startSwtpm();
  dir = await mkdtemp(path.join(os.tmpdir(), 'ks-snp-cli-'));
  h = await makeTestSnpHierarchy(dir);
  const keys = await measurementsKeys(dir);
  const measurements = path.join(dir, 'measurements.json');
  const zero = '00'.repeat(32);
  await writeSignedMeasurements(measurements, keys.keyPem, { '4': { expected: zero, enforced: true }, '9': { expected: zero, enforced: true } });
  const config = path.join(dir, 'keyservice.json');
  await writeFile(config, JSON.stringify({ attestation: { snp: { testOnlyRoot: { cert: 'ark.pem', product: 'Milan' }, minTcb: { snp: 22, microcode: 200 } } } }));
  svc = await spawnKeyService(['--config', config, '--attestation-variant', 'aws-sev-snp', '--listen', '127.0.0.1:0', '--state-dir', path.join(dir, 'state'), '--measurements', measurements, '--measurements-key', keys.pubPem, '--ek-ca', tpm.caCertPath, '--ek-ca', tpm.issuerCertPath]);
});
test.after.always(async () => {
  await svc?.stop();
  await tpm?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('sextant keyservice --attestation-variant aws-sev-snp: a swtpm quote plus an SNP report binding its AK releases the disk key; the start line names the test root', async (t) => {
  const started = svc as unknown as { variant: string; testOnlyRoot?: string };
  t.is(started.variant, 'aws-sev-snp');
  t.regex(started.testOnlyRoot ?? '', /^[0-9a-f]{64}$/);
  const e = await EngineAttestationTpm.open(tpm.tcti);
  try {
    const psp = { report: async (rd: Uint8Array) => signReport(h, rd) };
    const ep = { url: svc.listening, fingerprint: svc.fingerprint };
    const r = await attest(e, { endpoint: ep, diskUuid: DISK, role: 'join', nodeName: 'worker-1', snp: rawReportSource(psp, { vcek: h.vcekDer, chain: [h.chainPem] }), retry: { attempts: 1 } });
    t.is(r.diskKey.length, 32);
    t.is(r.clusterId, svc.clusterId);
    // No evidence: the same service refuses with its code.
    await t.throwsAsync(attest(e, { endpoint: ep, diskUuid: DISK, role: 'join', nodeName: 'worker-1', retry: { attempts: 1 } }), { code: 'VARIANT_EVIDENCE_REQUIRED' });
  } finally {
    await e.dispose();
  }
  const recs = await readAuditRecords(path.join(dir, 'state', 'audit.log'));
  const rel = recs.find((x) => x.decision === 'release') as unknown as { snp: { stages: string[]; report: { reportedTcb: { snp: number } } } };
  t.true(rel.snp.stages.includes('tcb-minimum'));
  t.is(rel.snp.report.reportedTcb.snp, 22);
});
