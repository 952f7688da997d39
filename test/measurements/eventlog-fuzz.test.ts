import test from 'ava';
import fc from 'fast-check';
import { isSextantError } from '../../lib/errors.js';
import { eventLogToJson } from '../../measurements/eventlog/json.js';
import { parseEventLog } from '../../measurements/eventlog/parse.js';
import { replayEventLog } from '../../measurements/eventlog/replay.js';
import { EV } from '../../measurements/eventlog/types.js';
import { buildEventLog, buildTcg12Log, sampleBootEvents } from '../helpers/eventlog.js';

/** Parse, replay and describe: the whole path `eventlog show/replay` takes. */
function useLog(bytes: Uint8Array): void {
  try {
    const log = parseEventLog(bytes);
    replayEventLog(log);
    JSON.stringify(eventLogToJson(log));
  } catch (e) {
    if (isSextantError(e, 'EVENTLOG_TRUNCATED') || isSextantError(e, 'EVENTLOG_MALFORMED') || isSextantError(e, 'EVENTLOG_FORMAT_UNSUPPORTED')) return;
    throw e;
  }
}

const valid = buildEventLog(sampleBootEvents(), { banks: ['sha1', 'sha256', 'sha384'], startupLocality: 3 });

test('arbitrary bytes never throw anything but EVENTLOG_* errors', (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => useLog(b)), { numRuns: 1000 });
  t.pass();
});

test('a valid Spec ID event followed by arbitrary bytes never throws anything but EVENTLOG_* errors', (t) => {
  const head = buildEventLog([]);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => useLog(Buffer.concat([head, b]))), { numRuns: 1000 });
  t.pass();
});

const validTcg12 = buildTcg12Log(sampleBootEvents(), { specId: 'Spec ID Event02' });

for (const [format, log] of [['crypto-agile', valid], ['tcg1.2-sha1', validTcg12]] as const) {
  test(`mutated and truncated ${format} logs never throw anything but EVENTLOG_* errors`, (t) => {
    const mutation = fc.record({
      flips: fc.array(fc.tuple(fc.nat({ max: log.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      cut: fc.nat({ max: log.length }),
      insertAt: fc.nat({ max: log.length }),
      insert: fc.uint8Array({ maxLength: 16 }),
    });
    fc.assert(
      fc.property(mutation, (m) => {
        const b = Buffer.from(log);
        for (const [i, v] of m.flips) b[i] = v;
        useLog(Buffer.concat([b.subarray(0, m.insertAt), m.insert, b.subarray(m.insertAt)]).subarray(0, m.cut));
      }),
      { numRuns: 1500 },
    );
    t.pass();
  });
}

test('TCG 1.2 records after a valid first event, with arbitrary bytes, never throw anything but EVENTLOG_* errors', (t) => {
  const head = validTcg12.subarray(0, 32 + validTcg12.readUInt32LE(28));
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => useLog(Buffer.concat([head, b]))), { numRuns: 1000 });
  t.pass();
});

test('every event type with arbitrary data is described without throwing', (t) => {
  const types = [...Object.values(EV), 0x7fffffff];
  fc.assert(
    fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 200 }), (type, data) => {
      const log = parseEventLog(buildEventLog([{ pcr: 1, type, data }]));
      const [, e] = eventLogToJson(log).events;
      t.is(typeof e.description, 'string');
    }),
    { numRuns: 1500 },
  );
});
