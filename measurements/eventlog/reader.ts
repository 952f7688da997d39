/** A bounds-checked little-endian cursor: every short read goes through `short`, never a RangeError. */
export class ByteReader {
  pos = 0;

  constructor(
    readonly buf: Buffer,
    /** Called with what was being read and the absolute offset; must throw. */
    private readonly short: (what: string, offset: number, need: number) => never,
    /** Offset of buf[0] in the enclosing file, for messages. */
    readonly base = 0,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  get offset(): number {
    return this.base + this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.remaining) this.short(what, this.offset, n);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf.readUInt8(this.pos++);
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A UINT64 as bigint (addresses, lengths that may exceed 2^53). */
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A UINT64 used as a length: anything beyond what is left cannot be valid. */
  length64(what: string): number {
    const at = this.offset;
    const v = this.u64(what);
    if (v > BigInt(this.remaining)) this.short(what, at, Number(v > 2n ** 52n ? 2n ** 52n : v));
    return Number(v);
  }

  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  rest(): Buffer {
    const b = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return b;
  }
}
