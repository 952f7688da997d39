import { extend, zeroPcr, type PcrBanks } from '../../../measurements/pcr/extend.js';
import { toHex, type HashAlg } from '../../../lib/bytes.js';

/**
 * A deliberately small, independent reader of TCG crypto-agile event logs, used by the boot
 * tests and the fixture script as a second opinion next to sextant's own parser (and
 * tpm2_eventlog). It trusts its input (captured by our own boots) and checks only sizes.
 */

const ALG_BY_ID: Record<number, HashAlg> = { 0x0004: 'sha1', 0x000b: 'sha256', 0x000c: 'sha384', 0x000d: 'sha512' };

const EVENT_TYPES: Record<number, string> = {
  0x0: 'EV_PREBOOT_CERT', 0x1: 'EV_POST_CODE', 0x3: 'EV_NO_ACTION', 0x4: 'EV_SEPARATOR', 0x5: 'EV_ACTION',
  0x6: 'EV_EVENT_TAG', 0x7: 'EV_S_CRTM_CONTENTS', 0x8: 'EV_S_CRTM_VERSION', 0x9: 'EV_CPU_MICROCODE',
  0xa: 'EV_PLATFORM_CONFIG_FLAGS', 0xb: 'EV_TABLE_OF_DEVICES', 0xc: 'EV_COMPACT_HASH', 0xd: 'EV_IPL',
  0xe: 'EV_IPL_PARTITION_DATA', 0xf: 'EV_NONHOST_CODE', 0x10: 'EV_NONHOST_CONFIG', 0x11: 'EV_NONHOST_INFO',
  0x12: 'EV_OMIT_BOOT_DEVICE_EVENTS',
  0x80000001: 'EV_EFI_VARIABLE_DRIVER_CONFIG', 0x80000002: 'EV_EFI_VARIABLE_BOOT', 0x80000003: 'EV_EFI_BOOT_SERVICES_APPLICATION',
  0x80000004: 'EV_EFI_BOOT_SERVICES_DRIVER', 0x80000005: 'EV_EFI_RUNTIME_SERVICES_DRIVER', 0x80000006: 'EV_EFI_GPT_EVENT',
  0x80000007: 'EV_EFI_ACTION', 0x80000008: 'EV_EFI_PLATFORM_FIRMWARE_BLOB', 0x80000009: 'EV_EFI_HANDOFF_TABLES',
  0x8000000a: 'EV_EFI_PLATFORM_FIRMWARE_BLOB2', 0x8000000b: 'EV_EFI_HANDOFF_TABLES2', 0x800000e0: 'EV_EFI_VARIABLE_AUTHORITY',
  0x800000e1: 'EV_EFI_SPDM_FIRMWARE_BLOB', 0x800000e2: 'EV_EFI_SPDM_FIRMWARE_CONFIG',
};
const EV_NO_ACTION = 0x3;

export interface OracleEvent {
  pcr: number;
  type: string;
  digests: Partial<Record<HashAlg, string>>;
  data: Buffer;
}

export function readTcgLog(log: Buffer): OracleEvent[] {
  // First event: TCG_PCR_EVENT (SHA-1 format) carrying the Spec ID event with the digest sizes.
  const headerSize = log.readUInt32LE(28);
  const spec = log.subarray(32, 32 + headerSize);
  if (!spec.subarray(0, 15).equals(Buffer.from('Spec ID Event03'))) throw new Error('not a crypto-agile log');
  const algCount = spec.readUInt32LE(24);
  const sizes = new Map<number, number>();
  for (let i = 0; i < algCount; i++) sizes.set(spec.readUInt16LE(28 + 4 * i), spec.readUInt16LE(30 + 4 * i));
  const events: OracleEvent[] = [];
  let off = 32 + headerSize;
  while (off + 12 <= log.length) {
    const pcr = log.readUInt32LE(off);
    const type = log.readUInt32LE(off + 4);
    const count = log.readUInt32LE(off + 8);
    if (pcr === 0xffffffff || (pcr === 0 && type === 0 && count === 0)) break; // padding after the last event
    off += 12;
    const digests: Partial<Record<HashAlg, string>> = {};
    for (let i = 0; i < count; i++) {
      const id = log.readUInt16LE(off);
      const size = sizes.get(id);
      if (size === undefined) throw new Error(`digest of unknown algorithm 0x${id.toString(16)}`);
      const alg = ALG_BY_ID[id];
      if (alg) digests[alg] = toHex(log.subarray(off + 2, off + 2 + size));
      off += 2 + size;
    }
    const dataSize = log.readUInt32LE(off);
    const data = log.subarray(off + 4, off + 4 + dataSize);
    if (data.length !== dataSize) throw new Error('truncated event');
    off += 4 + dataSize;
    events.push({ pcr, type: EVENT_TYPES[type] ?? `0x${type.toString(16)}`, digests, data: Buffer.from(data) });
  }
  return events;
}

/** Replays every measured event (EV_NO_ACTION is not extended) into PCR values per bank. */
export function replayTcgLog(events: readonly OracleEvent[]): PcrBanks {
  const banks: PcrBanks = {};
  for (const e of events) {
    if (e.type === EVENT_TYPES[EV_NO_ACTION]) continue;
    for (const [alg, hex] of Object.entries(e.digests) as [HashAlg, string][]) {
      const bank = (banks[alg] ??= {});
      const old = bank[e.pcr] ? Buffer.from(bank[e.pcr], 'hex') : zeroPcr(alg);
      bank[e.pcr] = toHex(extend(alg, old, Buffer.from(hex, 'hex')));
    }
  }
  return banks;
}

/** A human description of an event's data: its text where it is text, else its size. */
export function describeEventData(e: OracleEvent): string {
  const d = e.data;
  switch (e.type) {
    case 'EV_EFI_ACTION':
    case 'EV_ACTION':
      return d.toString('latin1');
    case 'EV_IPL':
      return d.length % 2 === 0 && d.length >= 2 && d[1] === 0 ? `UTF-16LE "${d.toString('utf16le').replace(/\0+$/, '')}"` : d.toString('latin1').replace(/\0+$/, '');
    case 'EV_EVENT_TAG': {
      const id = d.readUInt32LE(0);
      const size = d.readUInt32LE(4);
      return `tag 0x${id.toString(16)} "${d.subarray(8, 8 + size).toString('latin1').replace(/\0+$/, '')}"`;
    }
    case 'EV_EFI_BOOT_SERVICES_APPLICATION': {
      const length = Number(d.readBigUInt64LE(8));
      const file = /(?:[\x20-\x7e]\0){4,}/.exec(d.subarray(32).toString('latin1'));
      return `image length ${length}${file ? `, path ${Buffer.from(file[0], 'latin1').toString('utf16le')}` : ', no file path (loaded from memory)'}`;
    }
    case 'EV_SEPARATOR':
      return d.toString('hex');
    default:
      return `${d.length} bytes`;
  }
}
