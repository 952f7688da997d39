/**
 * The real `sextant keyservice` process with its audit log on a real small file system
 * (tmpfs, else loop ext4): when the disk fills between round 1 and round 2, the release is
 * refused with AUDIT_UNAVAILABLE (503) and no sealed secret; the process stays up; when space
 * returns the same process releases again, no restart, and the log verifies. A restart on a
 * full disk comes up too (refusing until space returns).
 */
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import { postJson } from '../../agent/attest/transport.js';
import { readAuditRecords, verifyAuditLog } from '../../keyservice/audit/log.js';
import { replaySha256 } from '../../keyservice/service.js';
import { hash, toHex } from '../../lib/bytes.js';
import { run } from '../../lib/exec.js';
import { ROUTES } from '../../protocol/messages.js';
import { attestSteps } from '../helpers/attest-steps.js';
import { buildEventLog, EV_EVENT_TAG, EV_NO_ACTION, type SynthEvent } from '../helpers/eventlog.js';
import { measurementsKeys, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { spawnKeyService, type KeyServiceChild } from '../helpers/keyservice-process.js';
import { mountSmallFs, type SmallFs } from '../helpers/small-fs.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';

const EVENTS: SynthEvent[] = [{ pcr: 9, type: EV_EVENT_TAG, data: Buffer.from('console=ttyS0') }];
let sw: Swtpm;
let tpm: EngineAttestationTpm;
let fs: SmallFs;
let dir: string;
let args: string[];
let svc: KeyServiceChild | undefined;
let auditLog: string;

test.before(async () => {
  fs = await mountSmallFs(256);
  dir = await mkdtemp(path.join(os.tmpdir(), 'ks-full-'));
  sw = await startSwtpm();
  for (const e of EVENTS) await run('tpm2_pcrextend', [`${e.pcr}:sha256=${toHex(hash('sha256', e.data))}`], { env: { TPM2TOOLS_TCTI: sw.tcti } });
  const keys = await measurementsKeys(dir);
  const m = path.join(dir, 'measurements.json');
  await writeSignedMeasurements(m, keys.keyPem, { '9': { expected: replaySha256(buildEventLog(EVENTS)).pcrs['9'], enforced: true } });
  const config = path.join(dir, 'config.json');
  await writeFile(config, JSON.stringify({ rateLimit: { burst: 1000, perSecond: 1000 } }));
  auditLog = path.join(fs.dir, 'audit.log');
  args = ['--config', config, '--listen', '127.0.0.1:0', '--state-dir', path.join(dir, 'state'), '--audit-log', auditLog, '--measurements', m, '--measurements-key', keys.pubPem, '--ek-ca', sw.caCertPath, '--ek-ca', sw.issuerCertPath];
  tpm = await EngineAttestationTpm.open(sw.tcti);
});

test.after.always(async () => {
  await svc?.stop();
  await tpm?.dispose();
  await sw?.stop();
  await fs?.unmount();
  await rm(dir, { recursive: true, force: true });
});

const ep = () => ({ url: svc!.listening, fingerprint: svc!.fingerprint, timeoutMs: 20_000 });
const releases = async () => (await readAuditRecords(auditLog)).filter((r) => r.decision === 'release').length;

test.serial('disk full between round 1 and round 2: AUDIT_UNAVAILABLE, no secret, the process stays up and releases again once space returns', async (t) => {
  t.log(`small file system: ${fs.mechanism}`);
  svc = await spawnKeyService(args);
  const eventLog = buildEventLog(EVENTS);
  const first = await attestSteps(ep(), tpm, { eventLog, diskUuid: 'd15c0000-0000-4000-8000-000000000001' });
  t.truthy(first.secrets.diskKey);
  const seqBefore = (await verifyAuditLog(auditLog)).count;
  // Round 2 brings evidence the log has not stored yet (an EV_NO_ACTION event of 16 KiB, not
  // extended): its record cannot fit into what is left of the log's last page.
  const e = await t.throwsAsync(
    attestSteps(ep(), tpm, {
      eventLog: buildEventLog([...EVENTS, { pcr: 0, type: EV_NO_ACTION, data: Buffer.alloc(16_384, 1) }]),
      diskUuid: 'd15c0000-0000-4000-8000-000000000002',
      quote: async (d) => {
        await fs.fill(0); // after the challenge was audited, before round 2
        return tpm.quote(d);
      },
    }),
    { code: 'AUDIT_UNAVAILABLE' },
  );
  t.notRegex(e!.message, /diskKey/);
  t.is(svc.child.exitCode, null, 'still running');
  t.like(await postJson(ep(), ROUTES.nonce, {}), { v: 1 });
  // No half-written record left behind: the chain verifies with no torn tail, and nothing
  // after the first release is a release (a short refusal may still fit in the last page).
  t.like(await verifyAuditLog(auditLog), { tornBytes: 0 });
  const after = (await readAuditRecords(auditLog)).filter((r) => r.seq >= seqBefore);
  t.false(after.some((r) => r.decision === 'release'));
  t.log(`written while full: ${JSON.stringify(after.map((r) => [r.decision, r.code]))}`);
  t.is(await releases(), 1);
  await fs.free();
  const again = await attestSteps(ep(), tpm, { eventLog, diskUuid: 'd15c0000-0000-4000-8000-000000000002' });
  t.truthy(again.secrets.diskKey);
  t.is(await releases(), 2);
  t.like(await verifyAuditLog(auditLog), { tornBytes: 0 });
});

test.serial('a restart on a full disk comes up, refuses with AUDIT_UNAVAILABLE, and recovers by itself when space returns', async (t) => {
  await svc!.stop();
  await fs.fill(0);
  svc = await spawnKeyService(args);
  // The log's last page may still hold a few small records: attest until the disk refuses.
  let refusedAt = -1;
  for (let i = 0; i < 20 && refusedAt < 0; i++) {
    try {
      await attestSteps(ep(), tpm, { eventLog: buildEventLog(EVENTS) });
    } catch (e) {
      t.is((e as { code?: string }).code, 'AUDIT_UNAVAILABLE', (e as Error).message);
      refusedAt = i;
    }
  }
  t.true(refusedAt >= 0, 'refused once the disk was full');
  t.log(`refused after ${refusedAt} releases fitted into the log's last page`);
  t.is(svc.child.exitCode, null, 'still running');
  await fs.free();
  const r = await attestSteps(ep(), tpm, { eventLog: buildEventLog(EVENTS) });
  t.truthy(r.secrets.diskKey);
  const recs = await readAuditRecords(auditLog);
  t.is(recs.filter((x) => x.decision === 'start').length, 2, 'the deferred start record was written once space returned');
  t.like(await verifyAuditLog(auditLog), { tornBytes: 0 });
});
