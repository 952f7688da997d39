import test from 'ava';
import fc from 'fast-check';
import { isSextantError } from '../../../lib/errors.js';
import { assertAdminRequest, MAX_ADMIN_MEASUREMENTS_BYTES } from '../../../keyservice/admin/protocol.js';

const good = {
  status: { op: 'status' },
  load: { op: 'load', measurements: Buffer.from('{"version":1}\n').toString('base64'), sig: 'MEUCIQ==', overlapMs: 60_000, force: true },
  retire: { op: 'retire', imageVersion: '1.2.3' },
};

function code(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return isSextantError(e) ? e.code : `not a SextantError: ${String(e)}`;
  }
}

test('well-formed admin requests pass; each bad field is named in one PROTOCOL_INVALID', (t) => {
  for (const r of Object.values(good)) t.deepEqual(assertAdminRequest(r), r);
  t.notThrows(() => assertAdminRequest({ op: 'load', measurements: good.load.measurements, sig: 'x' }));
  const e = t.throws(() => assertAdminRequest({ op: 'load', measurements: '***', sig: 5, overlapMs: -1, force: 'yes', extra: 1 }));
  t.is((e as { code?: string }).code, 'PROTOCOL_INVALID');
  for (const f of ['measurements', 'sig', 'overlapMs', 'force', 'extra']) t.true(e!.message.includes(f), f);
  t.is(code(() => assertAdminRequest({ op: 'retire', imageVersion: '1.2.3-rc1' })), 'PROTOCOL_INVALID');
  t.is(code(() => assertAdminRequest({ op: 'retire', imageVersion: '1.'.repeat(20) + '1' })), 'PROTOCOL_INVALID');
  t.is(code(() => assertAdminRequest(JSON.parse('{"op":"status","__proto__":1}'))), 'PROTOCOL_INVALID');
  t.is(code(() => assertAdminRequest({ op: 'delete' })), 'PROTOCOL_INVALID');
  t.is(code(() => assertAdminRequest([good.status])), 'PROTOCOL_INVALID');
  // The bound on the file: one byte over is refused before it is decoded.
  const over = Buffer.alloc(MAX_ADMIN_MEASUREMENTS_BYTES + 3).toString('base64');
  t.is(code(() => assertAdminRequest({ ...good.load, measurements: over })), 'PROTOCOL_INVALID');
});

test('fuzz: the admin request schema never throws anything but PROTOCOL_INVALID', (t) => {
  fc.assert(
    fc.property(fc.jsonValue(), (x) => {
      const c = code(() => assertAdminRequest(x));
      return c === undefined || c === 'PROTOCOL_INVALID';
    }),
    { numRuns: 2000 },
  );
  // One field of a good request replaced by anything: accepted or PROTOCOL_INVALID, never else.
  fc.assert(
    fc.property(fc.constantFrom(...(Object.keys(good) as (keyof typeof good)[])), fc.string({ maxLength: 12 }), fc.jsonValue(), (op, key, value) => {
      const base = good[op] as Record<string, unknown>;
      const k = Object.keys(base).includes(key) ? key : fc.sample(fc.constantFrom(...Object.keys(base)), 1)[0];
      const c = code(() => assertAdminRequest({ ...base, [k]: value }));
      return c === undefined || c === 'PROTOCOL_INVALID';
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
