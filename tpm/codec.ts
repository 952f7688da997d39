/**
 * Codec values for the TPM 2.0 wire format (Part 1 §18 / Part 2 conventions: big-endian,
 * sized buffers prefixed by their byte count, lists prefixed by their element count).
 *
 * A structure is declared once as a value built from these combinators; its TypeScript type
 * is derived with `ValueOf<typeof CODEC>`, so the wire layout and the type cannot drift.
 * Every decode failure is a SextantError with code TPM_UNMARSHAL naming the structure path;
 * every encode failure (a value the format cannot carry) is TPM_MARSHAL.
 */
import { SextantError } from '../lib/errors.js';

export interface Codec<T> {
  /** Spec name of the structure (used in error messages). */
  readonly name: string;
  encode(w: Writer, value: T): void;
  decode(r: Reader): T;
}

export type ValueOf<C> = C extends Codec<infer T> ? T : never;

export function unmarshalError(message: string): SextantError {
  return new SextantError({ code: 'TPM_UNMARSHAL', message });
}

/** A value the wire format cannot carry (out of range, wrong length, no arm for its tag): an encoder's error, never TPM_UNMARSHAL. */
export function marshalError(message: string): SextantError {
  return new SextantError({ code: 'TPM_MARSHAL', message });
}

export class Reader {
  private offset = 0;
  /** Structure path for error messages, innermost last. */
  private readonly path: string[];

  constructor(
    private readonly bytes: Uint8Array,
    path: readonly string[] = [],
  ) {
    this.path = [...path];
  }

  /** A reader over a sized sub-buffer that reports errors with this reader's path. */
  child(bytes: Uint8Array): Reader {
    return new Reader(bytes, this.path);
  }

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  take(n: number): Uint8Array {
    if (n > this.remaining) {
      throw unmarshalError(`${this.where()}: needs ${n} bytes at offset ${this.offset}, only ${this.remaining} left`);
    }
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /** A copy, so decoded values never alias (and never get zeroized with) the input. */
  takeCopy(n: number): Uint8Array {
    return Uint8Array.from(this.take(n));
  }

  /** Bytes consumed since `start` (for sized values that keep their raw encoding). */
  since(start: number): Uint8Array {
    return Uint8Array.from(this.bytes.subarray(start, this.offset));
  }

  within<T>(name: string, f: () => T): T {
    this.path.push(name);
    try {
      return f();
    } finally {
      this.path.pop();
    }
  }

  fail(message: string): never {
    throw unmarshalError(`${this.where()}: ${message}`);
  }

  private where(): string {
    return this.path.length === 0 ? 'TPM data' : this.path.join('.');
  }
}

export class Writer {
  private chunks: Uint8Array[] = [];
  private length = 0;

  put(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

export function marshal<T>(codec: Codec<T>, value: T): Uint8Array {
  const w = new Writer();
  codec.encode(w, value);
  return w.finish();
}

/** Decodes exactly one value; trailing bytes are an error unless `allowTrailing`. */
export function unmarshal<T>(codec: Codec<T>, bytes: Uint8Array, opts: { allowTrailing?: boolean } = {}): T {
  const r = new Reader(bytes);
  const v = r.within(codec.name, () => codec.decode(r));
  if (!opts.allowTrailing && r.remaining !== 0) {
    throw unmarshalError(`${codec.name}: ${r.remaining} trailing bytes after the structure`);
  }
  return v;
}

// ---- integers -------------------------------------------------------------------------

function uint(name: string, size: 1 | 2 | 4): Codec<number> {
  const max = 2 ** (8 * size) - 1;
  return {
    name,
    encode(w, v) {
      if (!Number.isInteger(v) || v < 0 || v > max) {
        throw marshalError(`${name}: ${String(v)} does not fit`);
      }
      const b = new Uint8Array(size);
      const dv = new DataView(b.buffer);
      if (size === 1) dv.setUint8(0, v);
      else if (size === 2) dv.setUint16(0, v);
      else dv.setUint32(0, v);
      w.put(b);
    },
    decode(r) {
      const b = r.take(size);
      const dv = new DataView(b.buffer, b.byteOffset, size);
      return size === 1 ? dv.getUint8(0) : size === 2 ? dv.getUint16(0) : dv.getUint32(0);
    },
  };
}

export const u8 = uint('UINT8', 1);
export const u16 = uint('UINT16', 2);
export const u32 = uint('UINT32', 4);

/** INT32 (e.g. PolicySecret's expiration), two's complement. */
export const i32: Codec<number> = {
  name: 'INT32',
  encode(w, v) {
    if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) throw marshalError(`INT32: ${String(v)} does not fit`);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v);
    w.put(b);
  },
  decode(r) {
    const b = r.take(4);
    return new DataView(b.buffer, b.byteOffset, 4).getInt32(0);
  },
};

export const u64: Codec<bigint> = {
  name: 'UINT64',
  encode(w, v) {
    if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw marshalError(`UINT64: ${v} does not fit`);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v);
    w.put(b);
  },
  decode(r) {
    const b = r.take(8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
  },
};

/** TPMI_YES_NO and friends: a byte that must be 0 or 1. */
export const bool: Codec<boolean> = {
  name: 'TPMI_YES_NO',
  encode(w, v) {
    w.put(Uint8Array.of(v ? 1 : 0));
  },
  decode(r) {
    const b = r.take(1)[0];
    if (b > 1) r.fail(`boolean byte is ${b}`);
    return b === 1;
  },
};

/** An integer that must be one of `allowed` (e.g. TPM_GENERATED_VALUE). */
export function constant(inner: Codec<number>, expected: number, name: string): Codec<number> {
  return {
    name,
    encode(w, v) {
      inner.encode(w, v);
    },
    decode(r) {
      const v = inner.decode(r);
      if (v !== expected) r.fail(`${name} is 0x${v.toString(16)}, expected 0x${expected.toString(16)}`);
      return v;
    },
  };
}

// ---- byte strings ---------------------------------------------------------------------

/** A fixed number of bytes. */
export function fixed(n: number, name = `BYTE[${n}]`): Codec<Uint8Array> {
  return {
    name,
    encode(w, v) {
      if (v.length !== n) throw marshalError(`${name}: ${v.length} bytes, expected ${n}`);
      w.put(v);
    },
    decode(r) {
      return r.takeCopy(n);
    },
  };
}

/** A byte string prefixed by its length (TPM2B_DIGEST, TPM2B_DATA, ...); `max` bounds it. */
export function bytes(size: Codec<number>, name: string, max = Infinity): Codec<Uint8Array> {
  return {
    name,
    encode(w, v) {
      if (v.length > max) throw marshalError(`${name}: ${v.length} bytes, at most ${max} allowed`);
      size.encode(w, v.length);
      w.put(v);
    },
    decode(r) {
      const n = size.decode(r);
      if (n > max) r.fail(`size ${n} exceeds the maximum ${max}`);
      return r.takeCopy(n);
    },
  };
}

/**
 * A structure prefixed by its byte count (TPM2B_PUBLIC, TPM2B_ECC_POINT, ...). The decoded
 * value keeps `raw`, the exact inner bytes, because Names and signatures cover those bytes.
 */
export interface Sized<T> {
  value: T;
  raw?: Uint8Array;
}

export function sized<T>(size: Codec<number>, inner: Codec<T>, name = `TPM2B<${inner.name}>`): Codec<Sized<T>> {
  return {
    name,
    encode(w, v) {
      const body = marshal(inner, v.value);
      size.encode(w, body.length);
      w.put(body);
    },
    decode(r) {
      const n = size.decode(r);
      const body = r.take(n);
      const innerReader = r.child(body);
      const value = inner.decode(innerReader);
      if (innerReader.remaining !== 0) r.fail(`${innerReader.remaining} bytes left inside the sized ${inner.name}`);
      return { value, raw: Uint8Array.from(body) };
    },
  };
}

/** A list prefixed by its element count (TPML_*); `max` bounds the count before allocating. */
export function list<T>(count: Codec<number>, item: Codec<T>, name = `TPML<${item.name}>`, max = 1024): Codec<T[]> {
  return {
    name,
    encode(w, v) {
      if (v.length > max) throw marshalError(`${name}: ${v.length} entries, at most ${max}`);
      count.encode(w, v.length);
      for (const x of v) item.encode(w, x);
    },
    decode(r) {
      const n = count.decode(r);
      if (n > max) r.fail(`count ${n} exceeds the maximum ${max}`);
      const out: T[] = [];
      for (let i = 0; i < n; i++) out.push(r.within(`[${i}]`, () => item.decode(r)));
      return out;
    },
  };
}

// ---- structures and unions ------------------------------------------------------------

export type Fields = Record<string, Codec<unknown>>;
export type ValuesOf<F extends Fields> = { [K in keyof F]: ValueOf<F[K]> };

/** Fields marshalled one after another in declaration order. */
export function struct<F extends Fields>(name: string, fields: F): Codec<ValuesOf<F>> {
  const entries = Object.entries(fields);
  return {
    name,
    encode(w, v) {
      for (const [k, c] of entries) c.encode(w, (v as Record<string, unknown>)[k]);
    },
    decode(r) {
      const out: Record<string, unknown> = {};
      for (const [k, c] of entries) out[k] = r.within(k, () => c.decode(r));
      return out as ValuesOf<F>;
    },
  };
}

/** An empty arm (TPMS_EMPTY, or a union member selected by TPM_ALG_NULL). */
export const empty = struct('TPMS_EMPTY', {});

type Arms = Record<number, Codec<object>>;

/** The TS type of a tagged union: each arm's fields plus the tag set to that arm's key. */
export type TaggedValue<K extends string, A extends Arms> = {
  [T in keyof A & number]: { [P in K]: T } & ValueOf<A[T]>;
}[keyof A & number];

/**
 * A TPMT_* structure whose tag selects the rest (TPMT_PUBLIC on `type`, TPMT_SIGNATURE on
 * `sigAlg`, ...): `tag` comes first on the wire, then the selected arm's fields. go-tpm
 * expresses the same with `tag=`/`selector=` struct tags.
 */
export function tagged<K extends string, A extends Arms>(
  name: string,
  tagKey: K,
  tag: Codec<number>,
  arms: A,
): Codec<TaggedValue<K, A>> {
  const armOf = (t: number): Codec<object> | undefined =>
    Object.prototype.hasOwnProperty.call(arms, t) ? arms[t] : undefined;
  return {
    name,
    encode(w, v) {
      const t = (v as Record<K, number>)[tagKey];
      const arm = armOf(t);
      if (!arm) throw marshalError(`${name}: no encoding for ${tagKey} 0x${t.toString(16)}`);
      tag.encode(w, t);
      arm.encode(w, v);
    },
    decode(r) {
      const t = r.within(tagKey, () => tag.decode(r));
      const arm = armOf(t);
      if (!arm) return r.fail(`unsupported ${tagKey} 0x${t.toString(16).padStart(4, '0')}`);
      return { [tagKey]: t, ...arm.decode(r) } as TaggedValue<K, A>;
    },
  };
}

/** A codec that adds a prefix struct before another one (TPMS_ATTEST: magic before the tag). */
export function prefixed<P extends Fields, T extends object>(
  name: string,
  prefix: P,
  rest: Codec<T>,
): Codec<ValuesOf<P> & T> {
  const head = struct(name, prefix);
  return {
    name,
    encode(w, v) {
      head.encode(w, v);
      rest.encode(w, v);
    },
    decode(r) {
      const h = head.decode(r);
      return { ...h, ...rest.decode(r) };
    },
  };
}

/** Maps a wire value to a friendlier one and back (used for flag words and enums). */
export function mapped<A, B>(inner: Codec<A>, name: string, to: (a: A, r: Reader) => B, from: (b: B) => A): Codec<B> {
  return {
    name,
    encode(w, v) {
      inner.encode(w, from(v));
    },
    decode(r) {
      return to(inner.decode(r), r);
    },
  };
}
