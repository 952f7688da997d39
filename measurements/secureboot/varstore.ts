import { SextantError } from '../../lib/errors.js';
import { guidBytes } from './guid.js';

/**
 * An EDK2 (OVMF) non-volatile variable store: the VARS.fd file qemu maps as the second
 * pflash. Layout (EDK2 MdeModulePkg, PI spec vol. 3): an EFI_FIRMWARE_VOLUME_HEADER with the
 * SystemNvData file-system GUID, a VARIABLE_STORE_HEADER (authenticated format), then
 * variables, each an AUTHENTICATED_VARIABLE_HEADER (60 bytes) + UTF-16LE name with NUL +
 * data, 4-byte aligned, erased space 0xFF; behind the store the fault-tolerant-write areas,
 * which stay as in the template.
 */
export interface StoredVariable {
  vendor: Buffer;
  name: string;
  attributes: number;
  /** EFI_TIME bytes (16): the timestamp of a time-based authenticated variable. */
  timestamp: Buffer;
  data: Buffer;
}

const FV_SYSTEM_NV_DATA = guidBytes('fff12b8d-7696-4c8b-a985-2747075b4f50');
const AUTHENTICATED_VARIABLE_STORE = guidBytes('aaf32c78-947b-439a-a180-2e144ec37792');
const VARIABLE_HEADER_SIZE = 60;
const START_ID = 0x55aa;
const VAR_ADDED = 0x3f;
/** Attributes: NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS | TIME_BASED_AUTHENTICATED_WRITE_ACCESS. */
export const ATTR_NV_BS = 0x03;
export const ATTR_NV_BS_RT_TIME_AUTH = 0x27;

function bad(message: string): SextantError {
  return new SextantError({ code: 'VARSTORE_INVALID', message: `OVMF variable store: ${message}` });
}

interface StoreLayout {
  /** Offset of the first variable and of the end of the variable area. */
  start: number;
  end: number;
}

function layout(fd: Buffer): StoreLayout {
  if (fd.length < 0x100) throw bad(`${fd.length} bytes is too small`);
  if (!fd.subarray(16, 32).equals(FV_SYSTEM_NV_DATA)) throw bad('no SystemNvData firmware volume at offset 0');
  if (fd.readUInt32LE(40) !== 0x4856465f) throw bad('no _FVH signature');
  const headerLength = fd.readUInt16LE(48);
  const fvLength = Number(fd.readBigUInt64LE(32));
  if (fvLength > fd.length || headerLength < 56 || headerLength > 0x1000) throw bad(`firmware volume header length ${headerLength}, volume ${fvLength} bytes`);
  if (!fd.subarray(headerLength, headerLength + 16).equals(AUTHENTICATED_VARIABLE_STORE)) throw bad('the variable store is not in the authenticated format');
  const size = fd.readUInt32LE(headerLength + 16);
  const format = fd[headerLength + 20];
  const state = fd[headerLength + 21];
  if (format !== 0x5a || state !== 0xfe) throw bad(`variable store format 0x${format.toString(16)}, state 0x${state.toString(16)}: not healthy`);
  const end = headerLength + size;
  if (end > fvLength) throw bad(`variable store of ${size} bytes overruns the volume`);
  return { start: headerLength + 28, end };
}

/** The live (VAR_ADDED) variables of a store, in store order. */
export function readVarstore(fd: Buffer): StoredVariable[] {
  const { start, end } = layout(fd);
  const vars: StoredVariable[] = [];
  let at = start;
  while (at + VARIABLE_HEADER_SIZE <= end && fd.readUInt16LE(at) === START_ID) {
    const state = fd[at + 2];
    const attributes = fd.readUInt32LE(at + 4);
    const timestamp = Buffer.from(fd.subarray(at + 16, at + 32));
    const nameSize = fd.readUInt32LE(at + 36);
    const dataSize = fd.readUInt32LE(at + 40);
    const vendor = Buffer.from(fd.subarray(at + 44, at + 60));
    const nameAt = at + VARIABLE_HEADER_SIZE;
    if (nameSize < 2 || nameSize % 2 || nameAt + nameSize + dataSize > end) throw bad(`variable at byte ${at} overruns the store`);
    const name = fd.subarray(nameAt, nameAt + nameSize - 2).toString('utf16le');
    const data = Buffer.from(fd.subarray(nameAt + nameSize, nameAt + nameSize + dataSize));
    if (state === VAR_ADDED) vars.push({ vendor, name, attributes, timestamp, data });
    at = align4(nameAt + nameSize + dataSize);
  }
  return vars;
}

/**
 * A copy of `template` whose variable store holds `template`'s variables with `set`
 * replacing any of the same vendor and name, then the new ones, compacted. Deterministic:
 * the same template and variables give the same bytes.
 */
export function writeVarstore(template: Buffer, set: readonly StoredVariable[]): Buffer {
  const { start, end } = layout(template);
  const key = (v: StoredVariable): string => v.vendor.toString('hex') + ':' + v.name;
  const replaced = new Set(set.map(key));
  const vars = [...readVarstore(template).filter((v) => !replaced.has(key(v))), ...set];
  const out = Buffer.from(template);
  out.fill(0xff, start, end);
  let at = start;
  for (const v of vars) {
    const name = Buffer.from(v.name + '\0', 'utf16le');
    const total = VARIABLE_HEADER_SIZE + name.length + v.data.length;
    if (align4(at + total) > end) throw bad(`the variables do not fit in the store's ${end - start} bytes`);
    if (v.timestamp.length !== 16 || v.vendor.length !== 16) throw bad(`variable ${v.name}: vendor GUID and timestamp must be 16 bytes`);
    out.writeUInt16LE(START_ID, at);
    out[at + 2] = VAR_ADDED;
    out[at + 3] = 0;
    out.writeUInt32LE(v.attributes, at + 4);
    out.writeBigUInt64LE(0n, at + 8); // MonotonicCount
    v.timestamp.copy(out, at + 16);
    out.writeUInt32LE(0, at + 32); // PubKeyIndex
    out.writeUInt32LE(name.length, at + 36);
    out.writeUInt32LE(v.data.length, at + 40);
    v.vendor.copy(out, at + 44);
    name.copy(out, at + VARIABLE_HEADER_SIZE);
    v.data.copy(out, at + VARIABLE_HEADER_SIZE + name.length);
    at = align4(at + total);
  }
  return out;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** EFI_TIME of a date (UTC; nanosecond, time zone and daylight fields zero). */
export function efiTime(d: Date): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(d.getUTCFullYear(), 0);
  b[2] = d.getUTCMonth() + 1;
  b[3] = d.getUTCDate();
  b[4] = d.getUTCHours();
  b[5] = d.getUTCMinutes();
  b[6] = d.getUTCSeconds();
  return b;
}
