import { SextantError } from '../lib/errors.js';

/**
 * Small declarative schemas for the protocol's JSON messages. Every object is closed (an
 * unknown key, `__proto__` and `constructor` included, is refused), every string, list and
 * number has a bound, and a check never descends into a value it did not expect, so the
 * work per message is linear in its size and its depth is the schema's. Problems are
 * collected and reported together, but only the first few, and field names taken from the
 * input are cut short: a refusal echoes no more than a few hundred bytes of attacker input.
 */

const MAX_LISTED = 8;
const MAX_KEY_SHOWN = 32;

export class Problems {
  private readonly list: string[] = [];
  private more = 0;

  add(at: string, why: string): void {
    if (this.list.length < MAX_LISTED) this.list.push(`${at || '(root)'}: ${why}`);
    else this.more++;
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  throwIfAny(what: string): void {
    if (this.empty) return;
    const more = this.more ? `; and ${this.more} more` : '';
    throw new SextantError({ code: 'PROTOCOL_INVALID', message: `invalid ${what}: ${this.list.join('; ')}${more}` });
  }
}

/** Checks `v` (found at path `at`) and reports what is wrong; never throws. */
export type Schema = (v: unknown, at: string, p: Problems) => void;

/** A key as it may appear in a message: plain ones as they are, others quoted and cut. */
function showKey(k: string): string {
  if (/^[A-Za-z0-9_]{1,32}$/.test(k)) return k;
  return JSON.stringify(k.slice(0, MAX_KEY_SHOWN)) + (k.length > MAX_KEY_SHOWN ? '…' : '');
}

export function child(at: string, k: string | number): string {
  const key = typeof k === 'number' ? String(k) : showKey(k);
  return at ? `${at}.${key}` : key;
}

export function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const proto = Object.getPrototypeOf(x) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * A closed object: exactly `fields` (those in `optional` may be absent). A key whose value is
 * `undefined` counts as absent (JSON never has one; objects built in-process do).
 */
export function object(fields: Record<string, Schema>, optional: readonly string[] = []): Schema {
  const opt = new Set(optional);
  return (v, at, p) => {
    if (!isPlainObject(v)) return p.add(at, 'must be a JSON object');
    for (const k of Object.keys(v)) {
      if (!Object.hasOwn(fields, k) && v[k] !== undefined) p.add(child(at, k), 'unexpected field');
    }
    for (const [k, check] of Object.entries(fields)) {
      const value = Object.hasOwn(v, k) ? v[k] : undefined;
      if (value === undefined && opt.has(k)) continue;
      check(value, child(at, k), p);
    }
  };
}

export function literal(x: string | number | boolean): Schema {
  return (v, at, p) => {
    if (v !== x) p.add(at, `must be ${JSON.stringify(x)}`);
  };
}

export function oneOf(values: readonly string[]): Schema {
  return (v, at, p) => {
    if (typeof v !== 'string' || !values.includes(v)) p.add(at, `must be one of ${values.map((x) => JSON.stringify(x)).join(', ')}`);
  };
}

export function int(min: number, max: number): Schema {
  return (v, at, p) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) p.add(at, `must be an integer from ${min} to ${max}`);
  };
}

/** A string of at most `maxLength` UTF-16 units, matching `re` when given. */
export function text(maxLength: number, re?: RegExp, what?: string): Schema {
  return (v, at, p) => {
    if (typeof v !== 'string' || v.length > maxLength || (re && !re.test(v))) p.add(at, what ? `must be ${what}` : `must be a string of at most ${maxLength} characters`);
  };
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard base64 of a byte string whose length is bounded (and exact when `exact`). */
export function base64(o: { exact?: number; min?: number; max?: number }): Schema {
  const max = o.exact ?? o.max ?? 0;
  const maxChars = Math.ceil(max / 3) * 4;
  return (v, at, p) => {
    // The length first: the regular expression then never runs over more than maxChars.
    if (typeof v !== 'string' || v.length > maxChars || !B64.test(v)) return p.add(at, `must be base64 of at most ${max} bytes`);
    const n = (v.length / 4) * 3 - (v.endsWith('==') ? 2 : v.endsWith('=') ? 1 : 0);
    if (o.exact !== undefined && n !== o.exact) return p.add(at, `must be ${o.exact} bytes`);
    if (o.min !== undefined && n < o.min) return p.add(at, `must be at least ${o.min} bytes`);
    if (n > max) p.add(at, `must be at most ${max} bytes`);
  };
}

export function list(item: Schema, maxItems: number): Schema {
  return (v, at, p) => {
    if (!Array.isArray(v) || v.length > maxItems) return p.add(at, `must be a list of at most ${maxItems}`);
    v.forEach((x, i) => item(x, child(at, i), p));
  };
}

/** An object whose keys are exactly `keys` (all required), each value checked by `value`. */
export function fixedKeys(keys: readonly string[], value: Schema, what: string): Schema {
  const allowed = new Set(keys);
  return (v, at, p) => {
    if (!isPlainObject(v)) return p.add(at, `must be an object of ${what}`);
    for (const k of Object.keys(v)) if (!allowed.has(k)) p.add(child(at, k), 'unexpected key');
    for (const k of keys) {
      if (!Object.hasOwn(v, k)) p.add(child(at, k), 'missing');
      else value(v[k], child(at, k), p);
    }
  };
}

/** A check beyond the shape (e.g. a date that parses); runs only on a string of bounded length. */
export function refine(base: Schema, ok: (v: string) => boolean, what: string): Schema {
  return (v, at, p) => {
    const q = new Problems();
    base(v, at, q);
    if (!q.empty || !ok(v as string)) p.add(at, `must be ${what}`);
  };
}

/** Checks `x` against `schema`; throws one PROTOCOL_INVALID naming the first problems. */
export function check(schema: Schema, x: unknown, what: string): void {
  const p = new Problems();
  schema(x, '', p);
  p.throwIfAny(what);
}
