/**
 * Names and numbers from the TCG PC Client Platform Firmware Profile (event types, section
 * 10.4.1) and the TCG Algorithm Registry (hash algorithm IDs).
 */
import type { HashAlg } from '../../lib/bytes.js';

export const EV = {
  EV_PREBOOT_CERT: 0x0,
  EV_POST_CODE: 0x1,
  EV_UNUSED: 0x2,
  EV_NO_ACTION: 0x3,
  EV_SEPARATOR: 0x4,
  EV_ACTION: 0x5,
  EV_EVENT_TAG: 0x6,
  EV_S_CRTM_CONTENTS: 0x7,
  EV_S_CRTM_VERSION: 0x8,
  EV_CPU_MICROCODE: 0x9,
  EV_PLATFORM_CONFIG_FLAGS: 0xa,
  EV_TABLE_OF_DEVICES: 0xb,
  EV_COMPACT_HASH: 0xc,
  EV_IPL: 0xd,
  EV_IPL_PARTITION_DATA: 0xe,
  EV_NONHOST_CODE: 0xf,
  EV_NONHOST_CONFIG: 0x10,
  EV_NONHOST_INFO: 0x11,
  EV_OMIT_BOOT_DEVICE_EVENTS: 0x12,
  EV_POST_CODE2: 0x13,
  EV_EFI_EVENT_BASE: 0x80000000,
  EV_EFI_VARIABLE_DRIVER_CONFIG: 0x80000001,
  EV_EFI_VARIABLE_BOOT: 0x80000002,
  EV_EFI_BOOT_SERVICES_APPLICATION: 0x80000003,
  EV_EFI_BOOT_SERVICES_DRIVER: 0x80000004,
  EV_EFI_RUNTIME_SERVICES_DRIVER: 0x80000005,
  EV_EFI_GPT_EVENT: 0x80000006,
  EV_EFI_ACTION: 0x80000007,
  EV_EFI_PLATFORM_FIRMWARE_BLOB: 0x80000008,
  EV_EFI_HANDOFF_TABLES: 0x80000009,
  EV_EFI_PLATFORM_FIRMWARE_BLOB2: 0x8000000a,
  EV_EFI_HANDOFF_TABLES2: 0x8000000b,
  EV_EFI_VARIABLE_BOOT2: 0x8000000c,
  EV_EFI_GPT_EVENT2: 0x8000000d,
  EV_EFI_HCRTM_EVENT: 0x80000010,
  EV_EFI_VARIABLE_AUTHORITY: 0x800000e0,
  EV_EFI_SPDM_FIRMWARE_BLOB: 0x800000e1,
  EV_EFI_SPDM_FIRMWARE_CONFIG: 0x800000e2,
  EV_EFI_SPDM_DEVICE_POLICY: 0x800000e3,
  EV_EFI_SPDM_DEVICE_AUTHORITY: 0x800000e4,
} as const;

export type EventTypeName = keyof typeof EV;

const NAMES = new Map<number, string>(Object.entries(EV).map(([k, v]) => [v, k]));

/** The spec's name for an event type, or its number in hex for types the spec does not list. */
export function eventTypeName(type: number): string {
  return NAMES.get(type) ?? `0x${type.toString(16).padStart(8, '0')}`;
}

/** Parses a name as printed by eventTypeName back to its number (undefined if unknown). */
export function eventTypeCode(name: string): number | undefined {
  if (name in EV) return EV[name as EventTypeName];
  return /^0x[0-9a-f]{1,8}$/i.test(name) ? Number.parseInt(name.slice(2), 16) : undefined;
}

/**
 * The hash algorithms a log may declare (TCG Algorithm Registry), with their digest sizes and
 * the node:crypto name that replays them. SM3 and SHA-3 are in OpenSSL 3, which Node 20 links;
 * `bankHash` (banks.ts) still checks at run time, since a build may lack one.
 */
export interface BankAlgorithm {
  algId: number;
  /** Our name for the bank: the key in `eventlog replay --json`. */
  alg: string;
  digestSize: number;
  /** node:crypto's name for it. */
  nodeHash: string;
}

const BANK_ALGORITHMS: readonly BankAlgorithm[] = [
  { algId: 0x0004, alg: 'sha1', digestSize: 20, nodeHash: 'sha1' },
  { algId: 0x000b, alg: 'sha256', digestSize: 32, nodeHash: 'sha256' },
  { algId: 0x000c, alg: 'sha384', digestSize: 48, nodeHash: 'sha384' },
  { algId: 0x000d, alg: 'sha512', digestSize: 64, nodeHash: 'sha512' },
  { algId: 0x0012, alg: 'sm3_256', digestSize: 32, nodeHash: 'sm3' },
  { algId: 0x0027, alg: 'sha3_256', digestSize: 32, nodeHash: 'sha3-256' },
  { algId: 0x0028, alg: 'sha3_384', digestSize: 48, nodeHash: 'sha3-384' },
  { algId: 0x0029, alg: 'sha3_512', digestSize: 64, nodeHash: 'sha3-512' },
];

export const BANKS_BY_ID: ReadonlyMap<number, BankAlgorithm> = new Map(BANK_ALGORITHMS.map((b) => [b.algId, b]));

export function algName(algId: number): string {
  return BANKS_BY_ID.get(algId)?.alg ?? `alg_0x${algId.toString(16).padStart(4, '0')}`;
}

export function algId(name: string): number | undefined {
  return BANK_ALGORITHMS.find((b) => b.alg === name)?.algId;
}

/** The banks lib/bytes.ts hashes (HashAlg), keyed by TPM_ALG_ID: what the rest of sextant compares. */
export const REPLAYABLE: ReadonlyMap<number, HashAlg> = new Map<number, HashAlg>([
  [0x0004, 'sha1'],
  [0x000b, 'sha256'],
  [0x000c, 'sha384'],
  [0x000d, 'sha512'],
]);
