/** Small UEFI decoders used to describe events: GUIDs, UTF-16 strings, device paths. */
import { ByteReader } from './reader.js';

/** Thrown by decoders on short data; describeEvent turns it into a hex fallback. */
export class DecodeError extends Error {}

export function decodeReader(buf: Buffer): ByteReader {
  return new ByteReader(buf, (what) => {
    throw new DecodeError(`short ${what}`);
  });
}

/** EFI_GUID: the first three fields little-endian, the last eight bytes as stored. */
export function guidString(b: Buffer): string {
  if (b.length < 16) throw new DecodeError('short GUID');
  const h = (x: Buffer): string => x.toString('hex');
  const le = (x: Buffer): string => h(Buffer.from(x).reverse());
  return `${le(b.subarray(0, 4))}-${le(b.subarray(4, 6))}-${le(b.subarray(6, 8))}-${h(b.subarray(8, 10))}-${h(b.subarray(10, 16))}`;
}

const KNOWN_GUIDS: Record<string, string> = {
  '8be4df61-93ca-11d2-aa0d-00e098032b8c': 'EFI_GLOBAL_VARIABLE',
  'd719b2cb-3d3a-4596-a3bc-dad00e67656f': 'EFI_IMAGE_SECURITY_DATABASE',
  '605dab50-e046-4300-abb6-3dd810dd8b23': 'SHIM_LOCK',
  'eb9d2d31-2d88-11d3-9a16-0090273fc14d': 'SMBIOS_TABLE',
  'f2fd1544-9794-4a2c-992e-e5bbcf20e394': 'SMBIOS3_TABLE',
  '8868e871-e4f1-11d3-bc22-0080c73c8881': 'ACPI_20_TABLE',
  'eb9d2d30-2d88-11d3-9a16-0090273fc14d': 'ACPI_TABLE',
  'c12a7328-f81f-11d2-ba4b-00a0c93ec93b': 'EFI System Partition',
  '0fc63daf-8483-4772-8e79-3d69d8477de4': 'Linux filesystem',
  '4f68bce3-e8cd-4db1-96e7-fbcaf984b709': 'Linux root (x86-64)',
  '5568e427-68fc-4f3d-ac74-ca555231cc68': 'LINUX_EFI_INITRD_MEDIA',
  '77fa9abd-0359-4d32-bd60-28f4e78f784b': 'Microsoft',
  '4aafd29d-68df-49ee-8aa9-347d375665a7': 'EFI_CERT_TYPE_PKCS7',
  'dcfa911d-26eb-469f-a220-38b7dc461220': 'EFI_MEMORY_ATTRIBUTES_TABLE',
  '7739f24c-93d7-11d4-9a3a-0090273fc14d': 'EFI_HOB_LIST',
  'ee4e5898-3914-4259-9d6e-dc7bd79403cf': 'LZMA_CUSTOM_DECOMPRESS',
};

export function guidLabel(b: Buffer): string {
  const g = guidString(b);
  return KNOWN_GUIDS[g] ?? g;
}

/** UTF-16LE up to the first NUL (or the end). */
export function utf16(b: Buffer): string {
  const even = b.subarray(0, b.length - (b.length % 2));
  let end = even.length;
  for (let i = 0; i + 1 < even.length; i += 2) {
    if (even[i] === 0 && even[i + 1] === 0) {
      end = i;
      break;
    }
  }
  return even.subarray(0, end).toString('utf16le');
}

/** Printable text with control characters escaped, cut to `max` characters. */
export function printable(s: string, max = 120): string {
  const esc = s.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
  return esc.length > max ? esc.slice(0, max) + '…' : esc;
}

const HEX_PREVIEW = 32;

/** The first bytes in hex, with the length when cut. */
export function hexPreview(b: Buffer): string {
  if (b.length === 0) return '(empty)';
  const h = b.subarray(0, HEX_PREVIEW).toString('hex');
  return b.length > HEX_PREVIEW ? `${h}… (${b.length} bytes)` : h;
}

/** Text as a JSON string literal (control characters escaped once, by JSON), cut to `max` characters. */
export function quoted(s: string, max = 120): string {
  return JSON.stringify(s.length > max ? s.slice(0, max) + '…' : s).replace(/\x7f/g, '\\u007f');
}

/** Quoted text when the bytes are ASCII or UTF-16LE text, else a hex preview. */
export function textOrHex(b: Buffer): string {
  const t = eventText(b);
  return t !== undefined ? quoted(t) : hexPreview(b);
}

/** True when the bytes read as ASCII text (a trailing NUL allowed). */
export function isAsciiText(b: Buffer): boolean {
  if (b.length === 0) return false;
  const body = b[b.length - 1] === 0 ? b.subarray(0, -1) : b;
  if (body.length === 0) return false;
  for (const x of body) if (x < 0x20 || x > 0x7e) if (x !== 0x09 && x !== 0x0a && x !== 0x0d) return false;
  return true;
}

/**
 * True when the bytes read as UTF-16LE text of the ASCII range (a trailing NUL allowed; a lone
 * trailing zero byte too: older systemd-boot measured its UTF-16 command line with an odd size).
 */
export function isUtf16Text(b: Buffer): boolean {
  const even = b.length % 2 === 1 && b[b.length - 1] === 0 ? b.subarray(0, -1) : b;
  if (even.length < 2 || even.length % 2 !== 0) return false;
  const body = even[even.length - 1] === 0 && even[even.length - 2] === 0 ? even.subarray(0, -2) : even;
  if (body.length === 0) return false;
  for (let i = 0; i < body.length; i += 2) {
    if (body[i + 1] !== 0 || body[i] < 0x20 || body[i] > 0x7e) return false;
  }
  return true;
}

/** Text of an event whose data is a string: ASCII or UTF-16LE; undefined if neither. */
export function eventText(b: Buffer): string | undefined {
  if (isUtf16Text(b)) return utf16(b);
  if (isAsciiText(b)) return b.toString('latin1').replace(/\0$/, '');
  return undefined;
}

function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}

/** One device path node as the UEFI shell would print it (the common ones), else a raw form. */
function nodeText(type: number, sub: number, d: Buffer): string {
  const r = decodeReader(d);
  try {
    if (type === 0x01 && sub === 0x01) {
      const fn = r.u8('function');
      const dev = r.u8('device');
      return `Pci(${hex(dev)},${hex(fn)})`;
    }
    if (type === 0x02 && sub === 0x01) {
      const hid = r.u32('HID');
      const uid = r.u32('UID');
      const pnp = hid >>> 16;
      if ((hid & 0xffff) === 0x41d0) {
        const root = pnp === 0x0a03 || pnp === 0x0a08;
        return root ? `PciRoot(${hex(uid)})` : `Acpi(PNP${pnp.toString(16).padStart(4, '0')},${hex(uid)})`;
      }
      return `Acpi(${hex(hid)},${hex(uid)})`;
    }
    if (type === 0x03 && sub === 0x02) return `Scsi(${hex(r.u16('target'))},${hex(r.u16('lun'))})`;
    if (type === 0x03 && sub === 0x05) return `USB(${hex(r.u8('port'))},${hex(r.u8('interface'))})`;
    if (type === 0x03 && sub === 0x12) return `Sata(${hex(r.u16('port'))},${hex(r.u16('multiplier'))},${hex(r.u16('lun'))})`;
    if (type === 0x03 && sub === 0x17) return `NVMe(${hex(r.u32('namespace'))})`;
    if (type === 0x03 && sub === 0x0b) return `MAC(${r.bytes(6, 'mac').toString('hex')})`;
    if (type === 0x04 && sub === 0x01) {
      const part = r.u32('partition');
      const start = r.u64('start');
      const size = r.u64('size');
      const sig = r.bytes(16, 'signature');
      r.u8('format');
      const sigType = r.u8('signature type');
      const sigText = sigType === 2 ? `GPT,${guidString(sig)}` : sigType === 1 ? `MBR,${hex(sig.readUInt32LE(0))}` : 'None';
      return `HD(${part},${sigText},${hex(start)},${hex(size)})`;
    }
    if (type === 0x04 && sub === 0x02) return `CDROM(${hex(r.u32('entry'))})`;
    if (type === 0x04 && sub === 0x03) return `VenMedia(${guidLabel(r.bytes(16, 'GUID'))})`;
    if (type === 0x04 && sub === 0x04) return utf16(d);
    if (type === 0x04 && sub === 0x06) return `FvFile(${guidString(r.bytes(16, 'GUID'))})`;
    if (type === 0x04 && sub === 0x07) return `Fv(${guidString(r.bytes(16, 'GUID'))})`;
    if (type === 0x04 && sub === 0x08) {
      // MEDIA_RELATIVE_OFFSET_RANGE_DEVICE_PATH: a reserved UINT32 precedes the two offsets.
      r.u32('reserved');
      return `Offset(${hex(r.u64('start'))},${hex(r.u64('end'))})`;
    }
    if (type === 0x01 && sub === 0x04) return `VenHw(${guidLabel(r.bytes(16, 'GUID'))})`;
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
  }
  return `Path(${type},${sub},${d.toString('hex')})`;
}

/** EFI_DEVICE_PATH_PROTOCOL as text: nodes joined by '/', instances by ','. */
export function devicePathText(b: Buffer): string {
  const parts: string[] = [];
  let cur: string[] = [];
  let pos = 0;
  while (pos + 4 <= b.length) {
    const type = b[pos];
    const sub = b[pos + 1];
    const len = b.readUInt16LE(pos + 2);
    if (len < 4 || pos + len > b.length) {
      cur.push(`<bad node at ${pos}>`);
      break;
    }
    if (type === 0x7f) {
      parts.push(cur.join('/'));
      cur = [];
      if (sub === 0xff) return parts.filter(Boolean).join(',');
    } else {
      cur.push(nodeText(type, sub, b.subarray(pos + 4, pos + len)));
    }
    pos += len;
  }
  if (cur.length) parts.push(cur.join('/'));
  return parts.filter(Boolean).join(',');
}
