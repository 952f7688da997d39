/**
 * Builds crypto-agile TCG event logs byte by byte from a list of events, written from the
 * spec's structure definitions (not from the parser), so tests can feed the parser logs with
 * known content.
 */
import { DIGEST_SIZE, hash, type HashAlg } from '../../lib/bytes.js';

export const ALG_IDS: Record<HashAlg, number> = { sha1: 0x0004, sha256: 0x000b, sha384: 0x000c, sha512: 0x000d };

export const EV_NO_ACTION = 0x3;
export const EV_SEPARATOR = 0x4;
export const EV_EVENT_TAG = 0x6;
export const EV_IPL = 0xd;
export const EV_EFI_VARIABLE_DRIVER_CONFIG = 0x80000001;
export const EV_EFI_BOOT_SERVICES_APPLICATION = 0x80000003;
export const EV_EFI_ACTION = 0x80000007;

export interface SynthEvent {
  pcr: number;
  type: number;
  data: Uint8Array;
  /** Digest per bank; default: the bank's hash of `data`. */
  digests?: Partial<Record<HashAlg, Uint8Array>>;
  /** Raw digest list to write instead (for malformed logs): [algId, bytes]. */
  rawDigests?: [number, Uint8Array][];
}

export interface SynthOptions {
  banks?: HashAlg[];
  /** Extra Spec ID algorithms we cannot hash (e.g. SM3 0x0012, 32 bytes): digests are filled with 0xAB. */
  extraAlgs?: { algId: number; size: number }[];
  /** Bytes appended after the last event (securityfs padding). */
  trailing?: Uint8Array;
  /** A StartupLocality EV_NO_ACTION event right after the Spec ID event. */
  startupLocality?: number;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}
function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** TCG_EfiSpecIdEvent for the given (algId, size) list. */
export function specIdEventData(algs: { algId: number; size: number }[]): Buffer {
  return Buffer.concat([
    Buffer.from('Spec ID Event03\0', 'latin1'),
    u32(0), // platformClass: client
    Buffer.from([0, 2, 0, 2]), // specVersionMinor 0, Major 2, errata 0, uintnSize 2 (UINT64)
    u32(algs.length),
    ...algs.map((a) => Buffer.concat([u16(a.algId), u16(a.size)])),
    Buffer.from([0]), // vendorInfoSize
  ]);
}

/** The legacy TCG_PCR_EVENT record that starts every crypto-agile log. */
export function legacyEvent(pcr: number, type: number, data: Uint8Array): Buffer {
  return Buffer.concat([u32(pcr), u32(type), Buffer.alloc(20), u32(data.length), data]);
}

export function pcrEvent2(pcr: number, type: number, digests: [number, Uint8Array][], data: Uint8Array): Buffer {
  return Buffer.concat([
    u32(pcr),
    u32(type),
    u32(digests.length),
    ...digests.map(([id, d]) => Buffer.concat([u16(id), d])),
    u32(data.length),
    data,
  ]);
}

export function startupLocalityData(locality: number): Buffer {
  return Buffer.concat([Buffer.from('StartupLocality\0', 'latin1'), Buffer.from([locality])]);
}

export function buildEventLog(events: SynthEvent[], opts: SynthOptions = {}): Buffer {
  const banks = opts.banks ?? ['sha1', 'sha256'];
  const extra = opts.extraAlgs ?? [];
  const algs = [...banks.map((b) => ({ algId: ALG_IDS[b], size: DIGEST_SIZE[b] })), ...extra];
  const parts: Buffer[] = [legacyEvent(0, EV_NO_ACTION, specIdEventData(algs))];
  const zeroDigests = (): [number, Uint8Array][] => algs.map((a) => [a.algId, Buffer.alloc(a.size)]);
  if (opts.startupLocality !== undefined) parts.push(pcrEvent2(0, EV_NO_ACTION, zeroDigests(), startupLocalityData(opts.startupLocality)));
  for (const e of events) {
    const digests: [number, Uint8Array][] =
      e.rawDigests ??
      [
        ...banks.map((b): [number, Uint8Array] => [ALG_IDS[b], e.digests?.[b] ?? hash(b, e.data)]),
        ...extra.map((a): [number, Uint8Array] => [a.algId, Buffer.alloc(a.size, 0xab)]),
      ];
    parts.push(pcrEvent2(e.pcr, e.type, digests, e.data));
  }
  if (opts.trailing) parts.push(Buffer.from(opts.trailing));
  return Buffer.concat(parts);
}

/** The PCR values a log of these events should replay to, computed independently of the parser. */
export function expectedPcrs(events: SynthEvent[], banks: HashAlg[], startupLocality?: number): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const b of banks) {
    const values = new Map<number, Buffer>();
    if (startupLocality !== undefined) {
      const v = Buffer.alloc(DIGEST_SIZE[b]);
      v[v.length - 1] = startupLocality;
      values.set(0, v);
    }
    for (const e of events) {
      if (e.type === EV_NO_ACTION) continue;
      const old = values.get(e.pcr) ?? Buffer.alloc(DIGEST_SIZE[b]);
      values.set(e.pcr, hash(b, old, e.digests?.[b] ?? hash(b, e.data)));
    }
    out[b] = Object.fromEntries([...values].sort((x, y) => x[0] - y[0]).map(([k, v]) => [String(k), v.toString('hex')]));
  }
  return out;
}

/** UEFI_VARIABLE_DATA for a variable in the EFI global-variable namespace. */
export function uefiVariableData(name: string, data: Uint8Array): Buffer {
  const guid = Buffer.from('61dfe48bca93d211aa0d00e098032b8c', 'hex'); // 8be4df61-93ca-11d2-aa0d-00e098032b8c
  const n = Buffer.from(name, 'utf16le');
  return Buffer.concat([guid, u64(name.length), u64(data.length), n, data]);
}

/** TCG_PCClientTaggedEvent. */
export function taggedEventData(id: number, data: Uint8Array): Buffer {
  return Buffer.concat([u32(id), u32(data.length), data]);
}

/** UEFI_IMAGE_LOAD_EVENT with a file-path device path. */
export function imageLoadEventData(path: string, location = 0x7e000000n, length = 0x10000n): Buffer {
  const file = Buffer.from(path + '\0', 'utf16le');
  const node = Buffer.concat([Buffer.from([0x04, 0x04]), u16(4 + file.length), file]);
  const end = Buffer.from([0x7f, 0xff, 0x04, 0x00]);
  const dp = Buffer.concat([node, end]);
  return Buffer.concat([u64(location), u64(length), u64(0), u64(dp.length), dp]);
}

/** A small boot resembling a direct UKI boot under OVMF: what the tests replay and show. */
export function sampleBootEvents(): SynthEvent[] {
  return [
    { pcr: 0, type: 0x8, data: Buffer.from('\0\0', 'latin1') }, // EV_S_CRTM_VERSION
    { pcr: 7, type: EV_EFI_VARIABLE_DRIVER_CONFIG, data: uefiVariableData('SecureBoot', Buffer.from([0])) },
    ...[0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => ({ pcr, type: EV_SEPARATOR, data: Buffer.alloc(4) })),
    { pcr: 4, type: EV_EFI_ACTION, data: Buffer.from('Calling EFI Application from Boot Option') },
    {
      pcr: 4,
      type: EV_EFI_BOOT_SERVICES_APPLICATION,
      data: imageLoadEventData('\\EFI\\BOOT\\BOOTX64.EFI'),
      digests: { sha1: hash('sha1', Buffer.from('uki')), sha256: hash('sha256', Buffer.from('uki')) },
    },
    { pcr: 11, type: EV_IPL, data: Buffer.from('.linux\0', 'utf16le') },
    { pcr: 9, type: EV_EVENT_TAG, data: taggedEventData(0x8f3b22ed, Buffer.from('LOADED_IMAGE::LoadOptions\0')) },
  ];
}
