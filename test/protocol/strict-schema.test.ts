/**
 * The request schemas are closed and bounded (protocol/schema.ts, protocol/validate.ts) and
 * the JSON they read is depth-bounded before it is parsed (lib/json-bounded.ts).
 */
import test from 'ava';
import { assertCompleteRequest, assertNonceRequest } from '../../protocol/validate.js';
import { jsonDepth, parseJsonBounded } from '../../lib/json-bounded.js';
import { deepArraysText, sampleComplete } from '../helpers/protocol-samples.js';

test('unknown keys are refused everywhere, __proto__ and constructor included', (t) => {
  t.notThrows(() => assertCompleteRequest(sampleComplete()));
  for (const body of [
    `{"__proto__":{"polluted":1},${JSON.stringify(sampleComplete()).slice(1)}`,
    JSON.stringify({ ...sampleComplete(), constructor: 'x' }),
    JSON.stringify({ ...sampleComplete(), inventory: { x: [[[]]] } }),
    JSON.stringify({ ...sampleComplete(), inventory: { disks: [{ name: 'vda', size: 1, extra: true }] } }),
    JSON.stringify({ ...sampleComplete(), pcrs: { ...(sampleComplete().pcrs as object), toString: 'ab'.repeat(32) } }),
  ]) {
    const parsed = parseJsonBounded(body);
    t.throws(() => assertCompleteRequest(parsed), { code: 'PROTOCOL_INVALID' }, body.slice(0, 80));
  }
  t.is(({} as { polluted?: number }).polluted, undefined);
});

test('the nonce request is {} or {"v":1}, nothing else', (t) => {
  t.notThrows(() => assertNonceRequest({}));
  t.notThrows(() => assertNonceRequest({ v: 1 }));
  t.throws(() => assertNonceRequest({ pad: 'x'.repeat(1000) }), { code: 'PROTOCOL_INVALID' });
  t.throws(() => assertNonceRequest([]), { code: 'PROTOCOL_INVALID' });
});

test('inventory: every field has a bound (strings 256, disks 64, sizes safe integers)', (t) => {
  const inv = (inventory: unknown) => () => assertCompleteRequest({ ...sampleComplete(), inventory });
  t.notThrows(inv({ vendor: 'v'.repeat(256), disks: Array.from({ length: 64 }, () => ({ name: 'n'.repeat(256), size: Number.MAX_SAFE_INTEGER, serial: 's'.repeat(256) })) }));
  t.throws(inv({ vendor: 'v'.repeat(257) }), { code: 'PROTOCOL_INVALID' });
  t.throws(inv({ disks: Array.from({ length: 65 }, () => ({ name: 'n', size: 1 })) }), { code: 'PROTOCOL_INVALID' });
  t.throws(inv({ disks: [{ name: 'n', size: 2 ** 60 }] }), { code: 'PROTOCOL_INVALID' });
  t.throws(inv({ disks: [{ name: 'n', size: -1 }] }), { code: 'PROTOCOL_INVALID' });
  t.throws(inv({ serial: 12 }), { code: 'PROTOCOL_INVALID' });
});

test('a refusal names at most 8 problems and cuts long keys: its message is bounded whatever the input', (t) => {
  const hostile: Record<string, unknown> = { ...sampleComplete() };
  for (let i = 0; i < 10_000; i++) hostile['k'.repeat(1000) + i] = i;
  const e = t.throws(() => assertCompleteRequest(hostile));
  t.true(e!.message.length < 1024, `${e!.message.length} characters`);
  t.regex(e!.message, /and 9992 more$/);
});

test('nesting deeper than 16 is refused before parsing, in linear time; brackets inside strings do not count', (t) => {
  t.is(jsonDepth('{"a":"[[[[[[[[[[[[[[[[[[[[[[[["}'), 1);
  t.is(jsonDepth('{"a":"\\"[[[[","b":[[]]}'), 3);
  t.notThrows(() => parseJsonBounded(`{"x":${deepArraysText(15)}}`));
  t.throws(() => parseJsonBounded(`{"x":${deepArraysText(16)}}`), { code: 'PROTOCOL_INVALID', message: /deeper than 16/ });
  const start = process.hrtime.bigint();
  t.throws(() => parseJsonBounded(deepArraysText(2_000_000)), { code: 'PROTOCOL_INVALID' });
  t.true(Number(process.hrtime.bigint() - start) / 1e6 < 200);
  t.throws(() => parseJsonBounded('{"v":1,'), { code: 'PROTOCOL_INVALID', message: /not JSON/ });
});
