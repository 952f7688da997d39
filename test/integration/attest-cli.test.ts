/**
 * The CLI contract end to end: `sextant keyservice` as a process on loopback, and
 * `sextant agent attest` driving a real swtpm through the koffi -> ESYS engine.
 */
import { spawnKeyService, type KeyServiceChild } from '../helpers/keyservice-process.js';
import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { sextant } from '../helpers/cli.js';
import { measurementsKeys, opensslClusterLock, opensslHkdf, readStateSecrets, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { hash, toHex } from '../../lib/bytes.js';
import { run } from '../../lib/exec.js';
import { readAuditRecords } from '../../keyservice/audit/log.js';

let tpm: Swtpm | undefined;
const swtpm = (): Swtpm => tpm!;
const DISK = 'c0ffee00-1234-4abc-8def-0123456789ab';
let dir: string;
let state: string;
let service: KeyServiceChild | undefined;
let url: string;
let fingerprint: string;

test.before(async () => {
  tpm = await startSwtpm();
  dir = await mkdtemp(path.join(os.tmpdir(), 'ks-cli-int-'));
  state = path.join(dir, 'state');
  const keys = await measurementsKeys(dir);
  const measurements = path.join(dir, 'measurements.json');
  // Expect this TPM's current PCR 4 and 9 (fresh swtpm: zero), enforced.
  const zero = '00'.repeat(32);
  await writeSignedMeasurements(measurements, keys.keyPem, { '4': { expected: zero, enforced: true }, '9': { expected: zero, enforced: true } });
  service = await spawnKeyService(['--listen', '127.0.0.1:0', '--state-dir', state, '--measurements', measurements, '--measurements-key', keys.pubPem, '--ek-ca', swtpm().caCertPath, '--ek-ca', swtpm().issuerCertPath]);
  const started = service;
  url = started.listening;
  fingerprint = started.fingerprint;
});

test.after.always(async () => {
  await service?.stop();
  await tpm?.stop();
  await rm(dir, { recursive: true, force: true });
});

const attestArgs = (extra: string[] = []) => ['agent', 'attest', '--tcti', swtpm().tcti, '--keyservice', url, '--ca-fingerprint', fingerprint, '--disk-uuid', DISK, '--no-event-log', '--json', ...extra];

test.serial('sextant agent attest: exit 0, the SHA-256 of the disk key HKDF(master, salt, "key-"+uuid) (openssl), never the key', async (t) => {
  const r = await sextant(attestArgs());
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ok: boolean; diskKeySha256: string; clusterId: string };
  const s = await readStateSecrets(state);
  const key = await opensslHkdf(s.master, s.salt, 'key-' + DISK);
  t.true(out.ok);
  t.is(out.diskKeySha256, toHex(hash('sha256', Buffer.from(key, 'hex'))));
  t.is(out.clusterId, await opensslHkdf(s.master, s.salt, 'cluster-id'));
  t.false(r.stdout.includes(key) || r.stdout.includes(Buffer.from(key, 'hex').toString('base64')));
});

test.serial('a wrong pinned fingerprint: exit 1, TLS_FINGERPRINT_MISMATCH', async (t) => {
  const r = await sextant(['agent', 'attest', '--tcti', swtpm().tcti, '--keyservice', url, '--ca-fingerprint', 'sha256:' + '0'.repeat(64), '--disk-uuid', DISK, '--no-event-log', '--json']);
  t.is(r.exitCode, 1);
  t.like(JSON.parse(r.stdout), { ok: false, code: 'TLS_FINGERPRINT_MISMATCH' });
});

test.serial('sextant agent attest --lock: PCR 15 extended with the cluster ID and confirmed; the audit log holds the quoted PCRs', async (t) => {
  const r = await sextant(attestArgs(['--lock']));
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ok: boolean; clusterId: string; lock: string; lockConfirmed: boolean; pcr15: string };
  const lock = await opensslClusterLock(out.clusterId);
  t.like(out, { ok: true, lock: 'extended', lockConfirmed: true, pcr15: lock });
  const pcr15 = await run('tpm2_pcrread', ['sha256:15'], { env: { TPM2TOOLS_TCTI: swtpm().tcti } });
  t.regex(pcr15.stdout, new RegExp(`15\\s*:\\s*0x${lock}`, 'i'));
  const rec = (await readAuditRecords(path.join(state, 'audit.log'))).at(-1)!;
  t.is(rec.decision, 'lock-confirmed');
  t.is(rec.pcrs?.['15'], lock);
  // Run again in the same boot (an agent restart): a rejoin at the lock, nothing extended twice.
  const again = await sextant(attestArgs(['--lock', '--role', 'rejoin']));
  t.is(again.exitCode, 0, again.stderr);
  t.like(JSON.parse(again.stdout), { ok: true, lock: 'already-locked', lockConfirmed: true, pcr15: lock });
});

test.serial('PCR 9 extended: exit 1 with the service\'s code MEASUREMENTS_MISMATCH', async (t) => {
  await run('tpm2_pcrextend', ['9:sha256=' + 'ab'.repeat(32)], { env: { TPM2TOOLS_TCTI: swtpm().tcti } });
  const r = await sextant(attestArgs());
  t.is(r.exitCode, 1);
  const out = JSON.parse(r.stdout) as { ok: boolean; code: string; message: string };
  t.like(out, { ok: false, code: 'MEASUREMENTS_MISMATCH' });
  t.regex(out.message, /PCR 9/);
});
