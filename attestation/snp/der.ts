import { SextantError, type SextantErrorCode } from '../../lib/errors.js';

/**
 * The little DER reading the SNP verifier needs and node:crypto does not expose: a
 * certificate's extensions (AMD's TCB and hwID values) and a CRL's revoked serials. Every
 * read is bounded by its parent's length, so a hostile length field cannot read past the
 * input or loop; any violation is the caller's `code` (the input was not what it claims).
 */
export interface Tlv {
  tag: number;
  /** Offset of the tag byte in the input. */
  start: number;
  /** Offset of the first content byte. */
  valueStart: number;
  /** Offset just past the content. */
  end: number;
  /** The content bytes (a view into the input). */
  value: Uint8Array;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
} as const;

export class DerReader {
  constructor(
    private readonly buf: Uint8Array,
    private readonly code: SextantErrorCode,
    private readonly what: string,
  ) {}

  private fail(message: string, at: number): never {
    throw new SextantError({ code: this.code, message: `${this.what}: ${message} at byte ${at}` });
  }

  /** Reads one TLV starting at `at`, which must end at or before `limit`. */
  tlv(at: number, limit = this.buf.length): Tlv {
    if (at + 2 > limit) this.fail('truncated TLV header', at);
    const tag = this.buf[at];
    // AMD's certificates and CRLs use only low tag numbers; high-tag-number form is refused.
    if ((tag & 0x1f) === 0x1f) this.fail(`high tag number form (0x${tag.toString(16)})`, at);
    let len = this.buf[at + 1];
    let p = at + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0) this.fail('indefinite length (not DER)', at);
      if (n > 4) this.fail('length field longer than 4 bytes', at);
      if (p + n > limit) this.fail('truncated length', at);
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + this.buf[p + i];
      if (len < 0x80 || (n > 1 && this.buf[p] === 0)) this.fail('non-minimal length (not DER)', at);
      p += n;
    }
    if (p + len > limit) this.fail(`length ${len} runs past its container`, at);
    return { tag, start: at, valueStart: p, end: p + len, value: this.buf.subarray(p, p + len) };
  }

  /** Reads a TLV and checks its tag. */
  expect(tag: number, at: number, limit?: number): Tlv {
    const t = this.tlv(at, limit);
    if (t.tag !== tag) this.fail(`expected tag 0x${tag.toString(16)}, found 0x${t.tag.toString(16)}`, at);
    return t;
  }

  /** The TLVs directly inside a constructed TLV, in order; they must fill it exactly. */
  children(parent: Tlv): Tlv[] {
    if (!(parent.tag & 0x20)) this.fail('expected a constructed value', parent.start);
    const out: Tlv[] = [];
    for (let p = parent.valueStart; p < parent.end; ) {
      const c = this.tlv(p, parent.end);
      out.push(c);
      p = c.end;
    }
    return out;
  }

  /** The whole encoding of a TLV (tag, length and content), e.g. to-be-signed bytes. */
  raw(t: Tlv): Uint8Array {
    return this.buf.subarray(t.start, t.end);
  }

  /** A non-negative INTEGER as a number (SPL values are small; larger values are refused). */
  smallUint(t: Tlv): number {
    if (t.tag !== TAG.INTEGER || t.value.length === 0 || t.value.length > 5) this.fail('expected a small INTEGER', t.start);
    if (t.value[0] & 0x80) this.fail('negative INTEGER', t.start);
    if (t.value.length > 1 && t.value[0] === 0 && !(t.value[1] & 0x80)) this.fail('non-minimal INTEGER', t.start);
    let n = 0;
    for (const b of t.value) n = n * 256 + b;
    if (n > 0xffffffff) this.fail('INTEGER too large', t.start);
    return n;
  }
}

/** Dotted form of an OBJECT IDENTIFIER's content bytes. */
export function oidString(value: Uint8Array): string {
  if (value.length === 0) return '';
  const parts: number[] = [];
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    n = n * 128 + (value[i] & 0x7f);
    if (!(value[i] & 0x80)) {
      parts.push(n);
      n = 0;
    }
    if (n > Number.MAX_SAFE_INTEGER / 128) return '';
  }
  const first = parts.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...parts].join('.');
}

/** An INTEGER's content as a canonical lowercase hex string without leading zero bytes (serial numbers). */
export function integerHex(value: Uint8Array): string {
  let i = 0;
  while (i < value.length - 1 && value[i] === 0) i++;
  return Buffer.from(value.subarray(i)).toString('hex');
}
