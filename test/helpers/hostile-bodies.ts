/**
 * fast-check generators of hostile request bodies for one endpoint, as raw text (or bytes),
 * so they can be what JSON.stringify never makes: duplicate keys, `__proto__` keys, 1e309,
 * lone surrogates, truncated documents, nesting thousands deep. Each body starts from a
 * well-formed sample of the endpoint (test/helpers/protocol-samples.ts) and applies one to
 * three mutations anywhere in it, or is free-form garbage. Shared by the npm-test fuzz
 * (test/integration/keyservice-fuzz*.test.ts) and the 100,000-per-endpoint runner
 * (bench/fuzz-requests.ts), and the judge of an answer is here too, so both hold the service
 * to the same rule: a typed 4xx, never a 5xx.
 */
import fc from 'fast-check';
import { FAILURE_ERROR_CODES, INPUT_ERROR_CODES } from '../../lib/errors.js';

const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', ' ', '\u0000', '\u202e', '𝕏', '\ud800', 'v', 'ok'];

const RAW_SCALARS = ['1e309', '-1e309', '1e-400', '-0', '9007199254740993', '18446744073709551616', '1.5', '-1', '0', '2', '1E1', 'true', 'false', 'null', '""', '[]', '{}', '"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"', '"=="', '"AAAA===="', '"\\u202e"'];

/** JSON text of one hostile value; `maxString` bounds the huge strings (bytes of work per body). */
export function hostileValue(maxString: number): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null') },
    { weight: 3, arbitrary: fc.constantFrom(...RAW_SCALARS) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 5000 }).map((d) => '['.repeat(d) + ']'.repeat(d)) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 2000 }).map((d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d)) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: maxString }).map((n) => JSON.stringify('A'.repeat(n))) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: maxString }).map((n) => JSON.stringify(Buffer.alloc(Math.floor(n / 4) * 3, 0x41).toString('base64'))) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 64 }).map((s) => JSON.stringify(s)) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 20_000 }).map((n) => '[' + Array(n).fill('0').join(',') + ']') },
  );
}

const hostileKey = fc.oneof(fc.constantFrom(...HOSTILE_KEYS), fc.string({ unit: 'binary', maxLength: 40 }), fc.integer({ min: 0, max: 5000 }).map((n) => 'k'.repeat(n)));

type Mutation =
  | { kind: 'replace'; target: number; pick: number; value: string }
  | { kind: 'add'; target: number; key: string; value: string }
  | { kind: 'duplicate'; target: number; pick: number; value: string; before: boolean }
  | { kind: 'remove'; target: number; pick: number };

/** The paths of every object inside `v` (the root is []). */
function objectPaths(v: unknown, at: string[] = [], out: string[][] = []): string[][] {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    out.push(at);
    for (const [k, x] of Object.entries(v)) objectPaths(x, [...at, k], out);
  } else if (Array.isArray(v)) v.forEach((x, i) => objectPaths(x, [...at, String(i)], out));
  return out;
}

/** Writes `v` as JSON text, applying the mutations aimed at each object on the way. */
function write(v: unknown, at: string, muts: Map<string, Mutation[]>): string {
  if (Array.isArray(v)) return '[' + v.map((x, i) => write(x, `${at}/${i}`, muts)).join(',') + ']';
  if (!v || typeof v !== 'object') return JSON.stringify(v);
  const entries: [string, string][] = Object.entries(v).map(([k, x]) => [JSON.stringify(k), write(x, `${at}/${k}`, muts)]);
  for (const m of muts.get(at) ?? []) {
    const i = entries.length ? ('pick' in m ? m.pick % entries.length : 0) : -1;
    if (m.kind === 'add') entries.push([JSON.stringify(m.key), m.value]);
    else if (i < 0) continue;
    else if (m.kind === 'replace') entries[i] = [entries[i][0], m.value];
    else if (m.kind === 'remove') entries.splice(i, 1);
    else if (m.before) entries.splice(i, 0, [entries[i][0], m.value]);
    else entries.push([entries[i][0], m.value]);
  }
  return '{' + entries.map(([k, x]) => `${k}:${x}`).join(',') + '}';
}

function mutation(targets: number, maxString: number): fc.Arbitrary<Mutation> {
  const target = fc.nat(targets - 1);
  const value = hostileValue(maxString);
  return fc.oneof(
    fc.record({ kind: fc.constant('replace' as const), target, pick: fc.nat(), value }),
    fc.record({ kind: fc.constant('add' as const), target, key: hostileKey, value }),
    fc.record({ kind: fc.constant('duplicate' as const), target, pick: fc.nat(), value, before: fc.boolean() }),
    fc.record({ kind: fc.constant('remove' as const), target, pick: fc.nat() }),
  );
}

/**
 * Hostile bodies for an endpoint whose well-formed body `sample()` makes. `maxString` bounds
 * huge strings (the HTTPS runs go past the body limit with it; in-process runs keep it small).
 */
export function hostileBody(sample: () => Record<string, unknown>, maxString = 64 * 1024): fc.Arbitrary<string | Buffer> {
  const base = sample();
  const paths = objectPaths(base).map((p) => '/' + p.join('/')).map((p) => (p === '/' ? '' : p));
  const mutated = fc.array(mutation(paths.length, maxString), { minLength: 1, maxLength: 3 }).map((ms) => {
    const byPath = new Map<string, Mutation[]>();
    for (const m of ms) byPath.set(paths[m.target], [...(byPath.get(paths[m.target]) ?? []), m]);
    return write(base, '', byPath);
  });
  return fc.oneof(
    { weight: 10, arbitrary: mutated },
    // Truncated JSON: a mutated (or valid) document cut anywhere.
    { weight: 2, arbitrary: fc.tuple(mutated, fc.double({ min: 0, max: 1, noNaN: true })).map(([s, f]) => s.slice(0, Math.floor(s.length * f))) },
    // Not the endpoint's shape at all.
    { weight: 1, arbitrary: hostileValue(maxString) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
    // The valid document wrapped, or with garbage after it.
    { weight: 1, arbitrary: fc.constantFrom('[', '{"x":', '"', '1').map((p) => p + JSON.stringify(base)) },
    { weight: 1, arbitrary: fc.constantFrom(']', '}', ',', ' x', '\u0000').map((s) => JSON.stringify(base) + s) },
  );
}

const CODES: ReadonlySet<string> = new Set<string>([...INPUT_ERROR_CODES, ...FAILURE_ERROR_CODES]);

/**
 * The rule every answer to a hostile body must keep: a 4xx whose body is
 * {ok:false, code:<a SextantError code>}; a 200 only where `mayAccept` says the route can
 * legitimately accept what it got (the nonce route takes `{}`). Returns what is wrong, or undefined.
 */
export function judge(status: number, body: unknown, mayAccept: boolean): string | undefined {
  if (status === 200) return mayAccept ? undefined : 'a 200 for a hostile body';
  if (status < 400 || status > 499) return `status ${status}`;
  const b = body as { ok?: unknown; code?: unknown } | undefined;
  if (!b || b.ok !== false || typeof b.code !== 'string' || !CODES.has(b.code)) return `untyped refusal ${JSON.stringify(body)?.slice(0, 200)}`;
  return undefined;
}
