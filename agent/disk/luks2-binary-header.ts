import { createHash, getHashes } from 'node:crypto';

/**
 * Integrity of the two LUKS2 header copies, checked in TypeScript on bytes read from the
 * device, before cryptsetup ever sees the device: cryptsetup "repairs" a damaged copy from the
 * other one whenever it loads a header from a writable device (even `luksDump` does), so a
 * damaged header is a reason to stop, not something a tool may quietly fix on a disk the agent
 * has not proven to be its own.
 *
 * Layout (LUKS2 on-disk format, section 2): a 4096-byte binary header, then the JSON area, both
 * covered by the checksum; `hdr_size` is their sum (16 KiB .. 4 MiB, a power of two); the
 * secondary copy starts at `hdr_offset` = hdr_size. Fields are big-endian:
 *   magic[6] @0 ("LUKS\xba\xbe" primary, "SKUL\xba\xbe" secondary), version u16 @6, hdr_size u64
 *   @8, seqid u64 @16, label[48] @24, checksum_alg[32] @72, salt[64] @104, uuid[40] @168,
 *   subsystem[48] @208, hdr_offset u64 @256, csum[64] @448 (zeroed while hashing).
 */

export const PRIMARY_MAGIC = Buffer.from('LUKS\xba\xbe', 'latin1');
export const SECONDARY_MAGIC = Buffer.from('SKUL\xba\xbe', 'latin1');
const BINARY_HEADER_BYTES = 4096;
/** The hdr_size values cryptsetup writes and accepts; a secondary is looked for at each. */
export const LUKS2_HDR_SIZES: readonly number[] = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096].map((k) => k * 1024);

export type HeaderCopy = { ok: true; offset: number; hdrSize: number; seqid: bigint } | { ok: false; problem: string };

export interface Luks2HeaderIntegrity {
  primary: HeaderCopy;
  secondary: HeaderCopy;
}

function cString(b: Buffer): string | undefined {
  const end = b.indexOf(0);
  return end < 0 ? undefined : b.subarray(0, end).toString('latin1');
}

/** One copy at `offset` of `area` (the device's first bytes); `expectSize` from the other copy when known. */
export function checkHeaderCopy(area: Buffer, offset: number, magic: Buffer, expectSize?: number): HeaderCopy {
  if (offset + BINARY_HEADER_BYTES > area.length) return { ok: false, problem: `no room for a header at offset ${offset}` };
  const bin = area.subarray(offset, offset + BINARY_HEADER_BYTES);
  if (!bin.subarray(0, 6).equals(magic)) return { ok: false, problem: `no ${magic === PRIMARY_MAGIC ? 'primary' : 'secondary'} magic at offset ${offset}` };
  if (bin.readUInt16BE(6) !== 2) return { ok: false, problem: `version ${bin.readUInt16BE(6)} (want 2)` };
  const size = bin.readBigUInt64BE(8);
  const hdrSize = Number(size);
  if (!LUKS2_HDR_SIZES.includes(hdrSize)) return { ok: false, problem: `hdr_size ${size} is not a LUKS2 header size` };
  if (expectSize !== undefined && hdrSize !== expectSize) return { ok: false, problem: `hdr_size ${hdrSize}, the other copy says ${expectSize}` };
  if (bin.readBigUInt64BE(256) !== BigInt(offset)) return { ok: false, problem: `hdr_offset ${bin.readBigUInt64BE(256)} but found at ${offset}` };
  if (offset + hdrSize > area.length) return { ok: false, problem: `the header (${hdrSize} bytes at ${offset}) runs past the device's header area` };
  const alg = cString(bin.subarray(72, 104));
  if (alg === undefined || !getHashes().includes(alg)) return { ok: false, problem: `checksum algorithm ${JSON.stringify(alg ?? bin.subarray(72, 104).toString('latin1'))} unknown` };
  const copy = Buffer.from(area.subarray(offset, offset + hdrSize));
  const stored = Buffer.from(copy.subarray(448, 512));
  copy.fill(0, 448, 512);
  const digest = createHash(alg).update(copy).digest();
  if (digest.length > 64 || !digest.equals(stored.subarray(0, digest.length)) || stored.subarray(digest.length).some((x) => x !== 0)) {
    return { ok: false, problem: 'checksum mismatch' };
  }
  const json = cString(copy.subarray(BINARY_HEADER_BYTES));
  try {
    const j: unknown = json === undefined ? undefined : JSON.parse(json);
    if (typeof j !== 'object' || j === null || Array.isArray(j)) return { ok: false, problem: 'the JSON area holds no JSON object' };
  } catch {
    return { ok: false, problem: 'the JSON area does not parse' };
  }
  return { ok: true, offset, hdrSize, seqid: bin.readBigUInt64BE(16) };
}

/**
 * Both copies. With an unreadable primary the secondary is looked for at every offset a
 * header size allows (as cryptsetup does), so "primary damaged" and "both damaged" differ.
 */
export function checkLuks2Headers(area: Buffer): Luks2HeaderIntegrity {
  const primary = checkHeaderCopy(area, 0, PRIMARY_MAGIC);
  if (primary.ok) return { primary, secondary: checkHeaderCopy(area, primary.hdrSize, SECONDARY_MAGIC, primary.hdrSize) };
  const at = LUKS2_HDR_SIZES.find((o) => o + 6 <= area.length && area.subarray(o, o + 6).equals(SECONDARY_MAGIC));
  const secondary = at === undefined ? { ok: false as const, problem: 'no secondary magic at any LUKS2 header offset' } : checkHeaderCopy(area, at, SECONDARY_MAGIC);
  return { primary, secondary };
}

/** undefined when both copies are intact; otherwise which copy is damaged and how, for the refusal. */
export function describeDamage(i: Luks2HeaderIntegrity): string | undefined {
  const bad = [!i.primary.ok && `primary copy: ${i.primary.problem}`, !i.secondary.ok && `secondary copy: ${i.secondary.problem}`].filter((x): x is string => typeof x === 'string');
  return bad.length === 0 ? undefined : bad.join('; ');
}
