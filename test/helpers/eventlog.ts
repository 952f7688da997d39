/**
 * Builds crypto-agile TCG event logs byte by byte from a list of events, written from the
 * spec's structure definitions (not from the parser), so tests can feed the parser logs with
 * known content.
 */
import { createHash } from 'node:crypto';
import { DIGEST_SIZE, hash, type HashAlg } from '../../lib/bytes.js';

export const ALG_IDS: Record<HashAlg, number> = { sha1: 0x0004, sha256: 0x000b, sha384: 0x000c, sha512: 0x000d };

/** Banks beyond lib/bytes.ts's four, written here from the TCG Algorithm Registry (id, size, node:crypto name). */
export const EXTRA_BANKS = {
  sm3_256: { algId: 0x0012, size: 32, node: 'sm3' },
  sha3_256: { algId: 0x0027, size: 32, node: 'sha3-256' },
  sha3_384: { algId: 0x0028, size: 48, node: 'sha3-384' },
  sha3_512: { algId: 0x0029, size: 64, node: 'sha3-512' },
} as const;
export type ExtraBank = keyof typeof EXTRA_BANKS;
export type AnyBank = HashAlg | ExtraBank;

const bankInfo = (b: AnyBank): { algId: number; size: number; node: string } =>
  b in EXTRA_BANKS ? EXTRA_BANKS[b as ExtraBank] : { algId: ALG_IDS[b as HashAlg], size: DIGEST_SIZE[b as HashAlg], node: b };

/** Hash in any bank, straight from node:crypto (independent of the code under test). */
export function bankDigest(b: AnyBank, ...parts: Uint8Array[]): Buffer {
  const h = createHash(bankInfo(b).node);
  for (const p of parts) h.update(p);
  return h.digest();
}

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
  digests?: Partial<Record<AnyBank, Uint8Array>>;
  /** Raw digest list to write instead (for malformed logs): [algId, bytes]. */
  rawDigests?: [number, Uint8Array][];
}

export interface SynthOptions {
  banks?: AnyBank[];
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
  const algs = [...banks.map((b) => ({ algId: bankInfo(b).algId, size: bankInfo(b).size })), ...extra];
  const parts: Buffer[] = [legacyEvent(0, EV_NO_ACTION, specIdEventData(algs))];
  const zeroDigests = (): [number, Uint8Array][] => algs.map((a) => [a.algId, Buffer.alloc(a.size)]);
  if (opts.startupLocality !== undefined) parts.push(pcrEvent2(0, EV_NO_ACTION, zeroDigests(), startupLocalityData(opts.startupLocality)));
  for (const e of events) {
    const digests: [number, Uint8Array][] =
      e.rawDigests ??
      [
        ...banks.map((b): [number, Uint8Array] => [bankInfo(b).algId, e.digests?.[b] ?? bankDigest(b, e.data)]),
        ...extra.map((a): [number, Uint8Array] => [a.algId, Buffer.alloc(a.size, 0xab)]),
      ];
    parts.push(pcrEvent2(e.pcr, e.type, digests, e.data));
  }
  if (opts.trailing) parts.push(Buffer.from(opts.trailing));
  return Buffer.concat(parts);
}

/**
 * The PCR values a log of these events should replay to, computed independently of the parser.
 * `pcr0Locality`: the last byte of PCR 0's start value (StartupLocality 3/4, or 4 for H-CRTM).
 */
export function expectedPcrs(events: SynthEvent[], banks: AnyBank[], pcr0Locality?: number): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const b of banks) {
    const size = bankInfo(b).size;
    const values = new Map<number, Buffer>();
    if (pcr0Locality !== undefined) {
      const v = Buffer.alloc(size);
      v[v.length - 1] = pcr0Locality;
      values.set(0, v);
    }
    for (const e of events) {
      if (e.type === EV_NO_ACTION) continue;
      const old = values.get(e.pcr) ?? Buffer.alloc(size);
      values.set(e.pcr, bankDigest(b, old, e.digests?.[b] ?? bankDigest(b, e.data)));
    }
    out[b] = Object.fromEntries([...values].sort((x, y) => x[0] - y[0]).map(([k, v]) => [String(k), v.toString('hex')]));
  }
  return out;
}

/**
 * A TCG 1.2 format (SHA-1) log: TCG_PCR_EVENT records only (PC Client spec for TPM 1.2; TPM 2.0
 * firmware logging in EFI_TCG2_EVENT_LOG_FORMAT_TCG_1_2), optionally opened by a "Spec ID
 * Event00"/"Spec ID Event02" TCG_EfiSpecIdEventStruct.
 */
export function buildTcg12Log(events: SynthEvent[], opts: { specId?: 'Spec ID Event00' | 'Spec ID Event02'; trailing?: Uint8Array } = {}): Buffer {
  const parts: Buffer[] = [];
  if (opts.specId) {
    const specId = Buffer.concat([Buffer.from(opts.specId + '\0', 'latin1'), u32(0), Buffer.from([2, 1, 0, 2, 0])]);
    parts.push(legacyEvent(0, EV_NO_ACTION, specId));
  }
  for (const e of events) {
    const digest = e.digests?.sha1 ?? hash('sha1', e.data);
    parts.push(Buffer.concat([u32(e.pcr), u32(e.type), Buffer.from(digest), u32(e.data.length), e.data]));
  }
  if (opts.trailing) parts.push(Buffer.from(opts.trailing));
  return Buffer.concat(parts);
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

/** Parses the `pcrs:` block at the end of tpm2_eventlog's YAML (tpm2-tools: the second opinion on a replay). */
export function tpm2EventlogPcrs(yaml: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  const at = yaml.lastIndexOf('\npcrs:');
  if (at < 0) throw new Error('tpm2_eventlog printed no pcrs block');
  let bank: string | undefined;
  for (const line of yaml.slice(at).split('\n')) {
    const b = /^ {2}(\w+):\s*$/.exec(line);
    if (b) out[(bank = b[1])] = {};
    const p = /^ {4}(\d+)\s*:\s*0x([0-9a-fA-F]+)/.exec(line);
    if (p && bank) out[bank][p[1]] = p[2].toLowerCase();
  }
  return out;
}
