import { SextantError, type SextantErrorCode } from './errors.js';

/** One DER TLV: its tag byte, where its value lies, and its whole encoding. */
export interface Tlv {
  tag: number;
  value: Buffer;
  /** Tag, length and value: the element's exact bytes. */
  raw: Buffer;
}

/**
 * A strict, small DER reader (definite lengths only, single-byte tags): enough to walk
 * PKCS#7 and X.509 structures for the fields node:crypto does not expose. Malformed input
 * throws `code` with the byte offset.
 */
export class DerReader {
  private at = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly code: SextantErrorCode,
  ) {}

  get done(): boolean {
    return this.at >= this.buf.length;
  }

  next(expectedTag?: number): Tlv {
    const start = this.at;
    const fail = (why: string): never => {
      throw new SextantError({ code: this.code, message: `DER at byte ${start}: ${why}` });
    };
    if (this.buf.length - start < 2) fail('truncated header');
    const tag = this.buf[start];
    if ((tag & 0x1f) === 0x1f) fail('multi-byte tags are not supported');
    let len = this.buf[start + 1];
    let p = start + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0) fail('indefinite length');
      if (n > 4) fail(`length of ${n} bytes`);
      if (this.buf.length - p < n) fail('truncated length');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + this.buf[p + i];
      p += n;
    }
    if (this.buf.length - p < len) fail(`value of ${len} bytes, ${this.buf.length - p} left`);
    if (expectedTag !== undefined && tag !== expectedTag) fail(`tag 0x${tag.toString(16)}, expected 0x${expectedTag.toString(16)}`);
    this.at = p + len;
    return { tag, value: this.buf.subarray(p, p + len), raw: this.buf.subarray(start, p + len) };
  }

  /** A reader over a constructed element's contents. */
  static of(tlv: Tlv, code: SextantErrorCode): DerReader {
    return new DerReader(tlv.value, code);
  }
}
