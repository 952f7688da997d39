import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { toHex } from '../../../lib/bytes.js';
import { describeEvent, isExtended, parseEventLog } from '../../../measurements/eventlog/index.js';
import { nameChangedComponents } from '../../../attestation/policy/name-components.js';
import { PcrMismatchError } from '../../../attestation/policy/pcr-mismatch.js';
import { MAX_AUDIT_REASON } from '../../../keyservice/stage.js';
import type { ReferenceEvent, ReferenceSet } from '../../../attestation/policy/reference.js';
import { FIXTURES } from '../../helpers/paths.js';

// A real OVMF + systemd-stub 257 boot's firmware log (test/fixtures/boots): its PCR 11 events
// are the stub's section measurements, named like measurements.json names them.
async function bootLog(): Promise<Buffer> {
  return readFile(path.join(FIXTURES, 'boots/trixie-stub257/eventlog.bin'));
}

function referenceFromLog(log: Buffer, pcr: number): ReferenceEvent[] {
  return parseEventLog(log)
    .events.filter((e) => e.pcr === pcr && isExtended(e))
    .map((e) => {
      const d = describeEvent(e);
      return { type: e.typeName, digest: toHex(e.digests.find((x) => x.alg === 'sha256')!.digest), description: d, component: d.replace(/"/g, '') };
    });
}

test('a changed .cmdline digest in the signed PCR 11 events is named as .cmdline (mismatch), nothing else', async (t) => {
  const log = await bootLog();
  const events = referenceFromLog(log, 11);
  // The stub logs each section twice (its name, then its content), both described by the name.
  const cmdline = events.map((e) => e.component).lastIndexOf('.cmdline');
  t.true(cmdline > 0, JSON.stringify(events.map((e) => e.description)));
  const tampered = events.map((e, i) => (i === cmdline ? { ...e, digest: 'ab'.repeat(32) } : e));
  // The signed file also lists the systemd-pcrphase words, which no firmware log holds.
  tampered.push({ type: 'SYSTEMD_PCRPHASE', digest: 'cd'.repeat(32), description: 'systemd-pcrphase ready', component: 'systemd-pcrphase' });
  const set: ReferenceSet = { label: 'test', pcrs: { '11': { expected: 'ef'.repeat(32), enforced: true, events: tampered } } };
  const named = nameChangedComponents(set, [{ pcr: 11, expected: 'ef'.repeat(32), observed: '00'.repeat(32) }], log);
  t.deepEqual(named.map((c) => [c.pcr, c.component, c.status]), [[11, '.cmdline', 'mismatch']]);
  t.is(named[0].logged, events[cmdline].digest);
});

test('no events in the signed file, or an unreadable log: nothing named (the PCR refusal stands alone)', async (t) => {
  const log = await bootLog();
  const mismatch = [{ pcr: 11, expected: 'ef'.repeat(32), observed: '00'.repeat(32) }];
  t.deepEqual(nameChangedComponents({ label: 'x', pcrs: { '11': { expected: 'ef'.repeat(32), enforced: true } } }, mismatch, log), []);
  const set: ReferenceSet = { label: 'x', pcrs: { '11': { expected: 'ef'.repeat(32), enforced: true, events: referenceFromLog(log, 11) } } };
  t.deepEqual(nameChangedComponents(set, mismatch, Buffer.from('not an event log')), []);
});

test('a refusal names the changed components before the PCR values, so a reason cut at 512 characters still names them', (t) => {
  const mismatches = [4, 9, 11].map((pcr) => ({ pcr, expected: 'ab'.repeat(32), observed: 'cd'.repeat(32) }));
  const e = new PcrMismatchError(mismatches, ['sextant-node 0.1.0 (sha256:7648995cf9f42359)']);
  const message = e.withComponents('PCR 4 uki, PCR 9 .cmdline, PCR 11 .cmdline');
  const cut = message.slice(0, MAX_AUDIT_REASON);
  t.regex(cut, /^enforced PCRs 4, 9, 11 differ from sextant-node 0\.1\.0 \(sha256:7648995cf9f42359\); changed components: PCR 4 uki, PCR 9 \.cmdline, PCR 11 \.cmdline; PCR 4 expected/);
  t.true(message.includes(`PCR 11 expected ${'ab'.repeat(32)}, quoted ${'cd'.repeat(32)}`), 'every value is still in the full message');
});
