import { SextantError } from '../../lib/errors.js';

/** One entry of the optional header's data directory (RVA + size; the certificate entry holds a file offset). */
export interface DataDirectory {
  virtualAddress: number;
  size: number;
}

export interface PeSection {
  name: string;
  virtualSize: number;
  virtualAddress: number;
  sizeOfRawData: number;
  pointerToRawData: number;
  characteristics: number;
  /** File offset of this section's 40-byte header. */
  headerOffset: number;
}

export interface PeImage {
  machine: number;
  timeDateStamp: number;
  /** File offset of the COFF TimeDateStamp field (reproducible builds zero it). */
  timeDateStampOffset: number;
  format: 'PE32' | 'PE32+';
  addressOfEntryPoint: number;
  imageBase: bigint;
  sectionAlignment: number;
  fileAlignment: number;
  sizeOfImage: number;
  sizeOfHeaders: number;
  checkSum: number;
  /** File offset of the CheckSum field, which Authenticode skips. */
  checkSumOffset: number;
  dataDirectories: DataDirectory[];
  /** File offset of data directory entry 4 (certificate table) or undefined when the header has fewer entries. */
  certificateDirectoryOffset: number | undefined;
  /** The attribute certificate table (Authenticode signatures): a file range, absent when unsigned. */
  certificateTable: { offset: number; size: number } | undefined;
  sections: PeSection[];
  fileSize: number;
}

const IMAGE_DIRECTORY_ENTRY_SECURITY = 4;
/** Zero fill we are willing to materialize for one section (a bigger gap is not a UKI payload). */
const MAX_ZERO_FILL = 256 << 20;

function malformed(message: string): never {
  throw new SextantError({ code: 'PE_MALFORMED', message });
}

/** Bounds-checked little-endian reads: every read past the end is PE_MALFORMED, never a RangeError. */
class Reader {
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private check(off: number, n: number, what: string): void {
    if (!Number.isSafeInteger(off) || off < 0 || off + n > this.bytes.length) {
      malformed(`${what} at offset ${off} lies outside the file (${this.bytes.length} bytes)`);
    }
  }
  u16(off: number, what: string): number {
    this.check(off, 2, what);
    return this.view.getUint16(off, true);
  }
  u32(off: number, what: string): number {
    this.check(off, 4, what);
    return this.view.getUint32(off, true);
  }
  u64(off: number, what: string): bigint {
    this.check(off, 8, what);
    return this.view.getBigUint64(off, true);
  }
  slice(off: number, n: number, what: string): Uint8Array {
    this.check(off, n, what);
    return this.bytes.subarray(off, off + n);
  }
}

function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return Buffer.from(b.subarray(0, end < 0 ? b.length : end)).toString('latin1');
}

/** Resolves a `/123` long section name through the COFF string table when one is present. */
function sectionName(r: Reader, raw: Uint8Array, stringTable: number | undefined): string {
  const short = cString(raw);
  const m = /^\/(\d+)$/.exec(short);
  if (!m || stringTable === undefined) return short;
  const at = stringTable + Number(m[1]);
  if (at >= r.bytes.length) return short;
  return cString(r.bytes.subarray(at, Math.min(r.bytes.length, at + 256)));
}

/**
 * Parses the headers of a PE/COFF image (Microsoft PE format spec): DOS stub, COFF header,
 * optional header (PE32 / PE32+), data directories, section table and certificate table.
 * Everything the Authenticode hash and the UKI logic rely on is validated here, so any bad
 * input ends as PE_MALFORMED.
 */
export function parsePe(bytes: Uint8Array): PeImage {
  const r = new Reader(bytes);
  if (bytes.length < 64 || bytes[0] !== 0x4d || bytes[1] !== 0x5a) malformed('no MZ (DOS) header');
  const peOff = r.u32(0x3c, 'e_lfanew');
  const sig = r.slice(peOff, 4, 'PE signature');
  if (sig[0] !== 0x50 || sig[1] !== 0x45 || sig[2] !== 0 || sig[3] !== 0) malformed(`no PE signature at offset ${peOff}`);
  const coff = peOff + 4;
  const machine = r.u16(coff, 'Machine');
  const numberOfSections = r.u16(coff + 2, 'NumberOfSections');
  const timeDateStamp = r.u32(coff + 4, 'TimeDateStamp');
  const pointerToSymbolTable = r.u32(coff + 8, 'PointerToSymbolTable');
  const numberOfSymbols = r.u32(coff + 12, 'NumberOfSymbols');
  const sizeOfOptionalHeader = r.u16(coff + 16, 'SizeOfOptionalHeader');
  const opt = coff + 20;
  const magic = r.u16(opt, 'optional header Magic');
  let format: PeImage['format'];
  let imageBase: bigint;
  let numberOfRvaAndSizesOff: number;
  if (magic === 0x10b) {
    format = 'PE32';
    imageBase = BigInt(r.u32(opt + 28, 'ImageBase'));
    numberOfRvaAndSizesOff = opt + 92;
  } else if (magic === 0x20b) {
    format = 'PE32+';
    imageBase = r.u64(opt + 24, 'ImageBase');
    numberOfRvaAndSizesOff = opt + 108;
  } else {
    malformed(`unknown optional header magic 0x${magic.toString(16)}`);
  }
  const ddStart = numberOfRvaAndSizesOff + 4;
  if (ddStart > opt + sizeOfOptionalHeader) malformed(`SizeOfOptionalHeader ${sizeOfOptionalHeader} is too small for ${format}`);
  const checkSumOffset = opt + 64;
  const sizeOfHeaders = r.u32(opt + 60, 'SizeOfHeaders');
  const numberOfRvaAndSizes = r.u32(numberOfRvaAndSizesOff, 'NumberOfRvaAndSizes');
  if (numberOfRvaAndSizes > 16) malformed(`NumberOfRvaAndSizes ${numberOfRvaAndSizes} > 16`);
  if (ddStart + 8 * numberOfRvaAndSizes > opt + sizeOfOptionalHeader) {
    malformed('data directories extend past the optional header');
  }
  const dataDirectories: DataDirectory[] = [];
  for (let i = 0; i < numberOfRvaAndSizes; i++) {
    dataDirectories.push({
      virtualAddress: r.u32(ddStart + 8 * i, 'data directory'),
      size: r.u32(ddStart + 8 * i + 4, 'data directory'),
    });
  }
  const sectionTable = opt + sizeOfOptionalHeader;
  const sectionTableEnd = sectionTable + 40 * numberOfSections;
  if (sectionTableEnd > bytes.length) malformed('section table extends past the end of the file');
  if (sizeOfHeaders > bytes.length) malformed(`SizeOfHeaders ${sizeOfHeaders} exceeds the file size ${bytes.length}`);
  // Authenticode hashes the header fields up to SizeOfHeaders; the fields it skips must lie inside.
  const certificateDirectoryOffset = numberOfRvaAndSizes > IMAGE_DIRECTORY_ENTRY_SECURITY ? ddStart + 8 * IMAGE_DIRECTORY_ENTRY_SECURITY : undefined;
  if (sizeOfHeaders < (certificateDirectoryOffset ?? checkSumOffset + 4) + (certificateDirectoryOffset === undefined ? 0 : 8)) {
    malformed(`SizeOfHeaders ${sizeOfHeaders} does not cover the optional header`);
  }
  const symbolsEnd = pointerToSymbolTable + numberOfSymbols * 18;
  const stringTable = pointerToSymbolTable !== 0 && symbolsEnd + 4 <= bytes.length ? symbolsEnd : undefined;
  const sections: PeSection[] = [];
  for (let i = 0; i < numberOfSections; i++) {
    const h = sectionTable + 40 * i;
    const s: PeSection = {
      name: sectionName(r, r.slice(h, 8, 'section name'), stringTable),
      virtualSize: r.u32(h + 8, 'VirtualSize'),
      virtualAddress: r.u32(h + 12, 'VirtualAddress'),
      sizeOfRawData: r.u32(h + 16, 'SizeOfRawData'),
      pointerToRawData: r.u32(h + 20, 'PointerToRawData'),
      characteristics: r.u32(h + 36, 'Characteristics'),
      headerOffset: h,
    };
    if (s.sizeOfRawData > 0 && s.pointerToRawData + s.sizeOfRawData > bytes.length) {
      malformed(`section ${JSON.stringify(s.name)} raw data [${s.pointerToRawData}, +${s.sizeOfRawData}) lies outside the file`);
    }
    sections.push(s);
  }
  let certificateTable: PeImage['certificateTable'];
  const certDir = dataDirectories[IMAGE_DIRECTORY_ENTRY_SECURITY];
  if (certDir && certDir.size > 0) {
    if (certDir.virtualAddress < sizeOfHeaders || certDir.virtualAddress + certDir.size > bytes.length) {
      malformed(`certificate table [${certDir.virtualAddress}, +${certDir.size}) lies outside the file`);
    }
    certificateTable = { offset: certDir.virtualAddress, size: certDir.size };
  }
  return {
    machine,
    timeDateStamp,
    timeDateStampOffset: coff + 4,
    format,
    addressOfEntryPoint: r.u32(opt + 16, 'AddressOfEntryPoint'),
    imageBase,
    sectionAlignment: r.u32(opt + 32, 'SectionAlignment'),
    fileAlignment: r.u32(opt + 36, 'FileAlignment'),
    sizeOfImage: r.u32(opt + 56, 'SizeOfImage'),
    sizeOfHeaders,
    checkSum: r.u32(checkSumOffset, 'CheckSum'),
    checkSumOffset,
    dataDirectories,
    certificateDirectoryOffset,
    certificateTable,
    sections,
    fileSize: bytes.length,
  };
}

/**
 * A section's bytes as the loader maps them: VirtualSize bytes, the raw data zero-filled past
 * SizeOfRawData (what systemd-stub hashes and hands to the kernel).
 */
export function sectionMemory(bytes: Uint8Array, s: PeSection): Uint8Array {
  if (s.virtualSize <= s.sizeOfRawData) return bytes.subarray(s.pointerToRawData, s.pointerToRawData + s.virtualSize);
  if (s.virtualSize - s.sizeOfRawData > MAX_ZERO_FILL) {
    malformed(`section ${JSON.stringify(s.name)} VirtualSize ${s.virtualSize} is far beyond its raw data (${s.sizeOfRawData})`);
  }
  const out = new Uint8Array(s.virtualSize);
  out.set(bytes.subarray(s.pointerToRawData, s.pointerToRawData + s.sizeOfRawData));
  return out;
}
