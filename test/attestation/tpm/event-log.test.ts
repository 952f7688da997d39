import test from 'ava';
import { checkEventLog } from '../../../attestation/tpm/event-log.js';
import { replaySha256 } from '../../../keyservice/service.js';
import { extendAll } from '../../../measurements/pcr/extend.js';
import { hash, toHex } from '../../../lib/bytes.js';
import { buildEventLog, EV_EVENT_TAG, EV_SEPARATOR } from '../../helpers/eventlog.js';

const zero = '00'.repeat(32);
const events = [
  { pcr: 4, type: EV_SEPARATOR, data: Buffer.alloc(4) },
  { pcr: 9, type: EV_EVENT_TAG, data: Buffer.from('kernel command line') },
];
const quoted = (): Record<string, string> => {
  const p = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [String(i), zero]));
  p['4'] = toHex(extendAll('sha256', [hash('sha256', Buffer.alloc(4))]));
  p['9'] = toHex(extendAll('sha256', [hash('sha256', Buffer.from('kernel command line'))]));
  return p;
};

test('a log that replays to the quoted PCRs passes; PCRs 10, 11 and 15 (userspace) are not compared', (t) => {
  t.deepEqual(checkEventLog(replaySha256, buildEventLog(events), quoted()).comparedPcrs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14]);
});

test('an altered event is EVENTLOG_REPLAY_MISMATCH naming the PCR', (t) => {
  const altered = buildEventLog([events[0], { ...events[1], data: Buffer.from('kernel command line init=/bin/sh') }]);
  const e = t.throws(() => checkEventLog(replaySha256, altered, quoted()), { code: 'EVENTLOG_REPLAY_MISMATCH' } as never);
  t.regex(e!.message, /PCR 9/);
});

test('a dropped event or garbage is EVENTLOG_REPLAY_MISMATCH', (t) => {
  t.throws(() => checkEventLog(replaySha256, buildEventLog([events[0]]), { ...quoted(), '9': 'ff'.repeat(32) }), { code: 'EVENTLOG_REPLAY_MISMATCH' } as never);
  t.throws(() => checkEventLog(replaySha256, Buffer.from('not an event log at all'), quoted()), { code: 'EVENTLOG_REPLAY_MISMATCH' } as never);
});
