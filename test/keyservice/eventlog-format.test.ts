/**
 * The key service names the event log's format: a TCG 1.2 (SHA-1 only) log, recorded on real
 * machines (Debian's go-eventlog / go-attestation test data), is refused as a format it cannot
 * check a SHA-256 quote with (EVENTLOG_FORMAT_UNSUPPORTED), never as a replay mismatch; an
 * accepted log's format is in the release record.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { codecTpmChecks } from '../../attestation/tpm/codec-checks.js';
import { checkEventLog } from '../../attestation/tpm/event-log.js';
import type { TpmChecks } from '../../attestation/tpm/checks.js';
import { KeyServiceAttestor } from '../../keyservice/attestor.js';
import { AuditLog, readAuditRecords } from '../../keyservice/audit/log.js';
import { NonceStore } from '../../keyservice/nonce-store.js';
import { replaySha256 } from '../../keyservice/service.js';
import { parseEventLog } from '../../measurements/eventlog/parse.js';
import { realLogsWithoutPcrs, realMachines } from '../helpers/go-eventlog-data.js';
import { loadEvidence } from '../helpers/record-evidence.js';

async function realLogs() {
  return [...(await realMachines()), ...(await realLogsWithoutPcrs())].map((m) => ({ ...m, format: parseEventLog(m.log).format }));
}

test('every real TCG 1.2 log is EVENTLOG_FORMAT_UNSUPPORTED naming its format; every real crypto-agile log with SHA-256 replays and says crypto-agile', async (t) => {
  const logs = await realLogs();
  const tcg12 = logs.filter((l) => l.format === 'tcg1.2-sha1');
  t.true(tcg12.length >= 4, 'debian-10, linux-tpm12, windows-gcp-shielded-vm, option-rom, ...');
  for (const l of tcg12) {
    const e = t.throws(() => replaySha256(l.log), { code: 'EVENTLOG_FORMAT_UNSUPPORTED' }, l.name);
    t.regex(e.message, /TCG 1\.2 format \(tcg1\.2-sha1: SHA-1 digests only\) with bank\(s\) sha1: it has no SHA-256 digests/, l.name);
  }
  const agile = logs.filter((l) => l.format === 'crypto-agile');
  t.true(agile.length >= 10);
  for (const l of agile) t.is(replaySha256(l.log).format, 'crypto-agile', l.name);
});

test('a replay mismatch names the format; the stage, code and format are in the audit record', async (t) => {
  const ev = await loadEvidence();
  const debian10 = (await realMachines()).find((m) => m.name === 'debian-10')!;
  const agile = Buffer.from(ev.eventLog!, 'base64');
  const e = t.throws(() => checkEventLog(replaySha256, agile, { ...ev.pcrs, '4': 'ff'.repeat(32) }), { code: 'EVENTLOG_REPLAY_MISMATCH' });
  t.regex(e.message, /^event log \(crypto-agile\) does not reproduce the quote: PCR 4/);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-logfmt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const audit = await AuditLog.open(path.join(dir, 'audit.log'));
  let credential: Buffer | undefined;
  const tpm: TpmChecks = { ...codecTpmChecks, makeCredential: (ek, name, secret) => ((credential = Buffer.from(secret)), codecTpmChecks.makeCredential(ek, name, secret)) };
  const nonces = new NonceStore({ random: () => Buffer.from(ev.nonce, 'base64') });
  const attestor = new KeyServiceAttestor({
    ekCas: [new X509Certificate(ev.ekRoot), new X509Certificate(ev.ekIssuer)],
    tpm,
    nonces,
    references: () => [{ label: 'recorded', pcrs: { '4': { expected: ev.pcrs['4'], enforced: true } } }],
    masterSecret: Buffer.alloc(32, 1),
    salt: Buffer.alloc(32, 2),
    audit,
    replayEventLog: replaySha256,
  });
  const round2 = async (eventLog: string) => {
    nonces.issue();
    const r1 = await attestor.challenge({ v: 1, ekCert: ev.ekCert, akPublic: ev.akPublic }, 'test');
    return attestor.complete(
      { v: 1, sessionId: r1.sessionId, activatedCredential: credential!.toString('base64'), nonce: ev.nonce, ephemeralPublicKey: ev.ephemeralPublicKey, quoteAttest: ev.quoteAttest, quoteSignature: ev.quoteSignature, pcrs: ev.pcrs, eventLog, diskUuid: '11111111-2222-4333-8444-555555555555', role: 'join', nodeName: 'worker-1' },
      'test',
    );
  };
  await round2(ev.eventLog!);
  await t.throwsAsync(round2(debian10.log.toString('base64')), { code: 'EVENTLOG_FORMAT_UNSUPPORTED' });
  await audit.close();
  const records = (await readAuditRecords(path.join(dir, 'audit.log'))) as Record<string, unknown>[];
  t.like(records.find((r) => r.decision === 'release'), { eventLogFormat: 'crypto-agile' });
  const refused = records.find((r) => r.decision === 'refuse')!;
  t.like(refused, { stage: 'replayEventLog', code: 'EVENTLOG_FORMAT_UNSUPPORTED' });
  t.regex(String(refused.reason), /tcg1\.2-sha1/);
});
