import { toHex } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { decodeTcb, tcbLayoutFor, type TcbLayout, type TcbVersion } from './tcb.js';

/**
 * The SEV-SNP ATTESTATION_REPORT (AMD SEV-SNP Firmware ABI specification, "ATTESTATION_REPORT
 * Structure", the REPORT field of MSG_REPORT_RSP), versions 2, 3 and 5. All fields are
 * little-endian. Parsing is strict: exact length, every reserved (MBZ) range zero, reserved
 * bits of the key-info and policy words as the specification requires; any deviation is
 * SNP_REPORT_MALFORMED with the offset, an unknown version SNP_REPORT_VERSION_UNSUPPORTED.
 */
export const SNP_REPORT_SIZE = 0x4a0;
/** The signature covers bytes [0, 0x2A0). */
export const SNP_SIGNED_SIZE = 0x2a0;
/** ECDSA P-384 with SHA-384, the only algorithm the specification defines for reports. */
export const SIG_ALGO_ECDSA_P384_SHA384 = 1;
export const SUPPORTED_REPORT_VERSIONS: readonly number[] = [2, 3, 5];

export type SigningKey = 'vcek' | 'vlek' | 'none';

export interface GuestPolicy {
  /** The raw 64-bit policy word, hex. */
  raw: string;
  abiMajor: number;
  abiMinor: number;
  /** Bit 16: SMT allowed. */
  smt: boolean;
  /** Bit 18: association with a migration agent allowed. */
  migrateMa: boolean;
  /** Bit 19: debugging allowed (the hypervisor can read and write guest memory). */
  debug: boolean;
  /** Bit 20: the guest may run on a single socket only. */
  singleSocket: boolean;
  /** Bit 21: CXL may be populated with guest memory. */
  cxlAllow: boolean;
  /** Bit 22: AES-256-XTS required for memory encryption. */
  memAes256Xts: boolean;
  /** Bit 23: Running Average Power Limit must be disabled. */
  raplDis: boolean;
  /** Bit 24: ciphertext hiding must be enabled. */
  ciphertextHiding: boolean;
  /** Bit 25: guest page swapping disabled. */
  pageSwapDisable: boolean;
}

export interface PlatformInfo {
  raw: string;
  smtEnabled: boolean;
  tsmeEnabled: boolean;
  eccEnabled: boolean;
  raplDisabled: boolean;
  ciphertextHidingEnabled: boolean;
  aliasCheckComplete: boolean;
  tioEnabled: boolean;
}

export interface FirmwareVersion {
  major: number;
  minor: number;
  build: number;
}

export interface SnpReport {
  version: number;
  guestSvn: number;
  policy: GuestPolicy;
  familyId: string;
  imageId: string;
  vmpl: number;
  signatureAlgo: number;
  /** Which TCB_VERSION byte layout applies (Turin adds an FMC byte and moves the others). */
  tcbLayout: TcbLayout;
  currentTcb: TcbVersion;
  platformInfo: PlatformInfo;
  /** Key info word (0x48): AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY. */
  authorKeyEn: boolean;
  maskChipKey: boolean;
  signingKey: SigningKey;
  reportData: string;
  measurement: string;
  hostData: string;
  idKeyDigest: string;
  authorKeyDigest: string;
  reportId: string;
  reportIdMa: string;
  reportedTcb: TcbVersion;
  /** Version 3 and later: CPUID family, model and stepping of the chip (combined values). */
  cpuid?: { family: number; model: number; stepping: number };
  chipId: string;
  committedTcb: TcbVersion;
  currentVersion: FirmwareVersion;
  committedVersion: FirmwareVersion;
  launchTcb: TcbVersion;
  /** Version 5 and later. */
  launchMitVector?: string;
  currentMitVector?: string;
  /** r and s as stored: 72 bytes little-endian each, hex. */
  signature: { r: string; s: string };
}

function malformed(message: string): never {
  throw new SextantError({ code: 'SNP_REPORT_MALFORMED', message: `SNP report: ${message}` });
}

function mbz(b: Uint8Array, lo: number, hi: number, what = 'reserved'): void {
  for (let i = lo; i < hi; i++) {
    if (b[i] !== 0) malformed(`${what} bytes 0x${lo.toString(16)}-0x${(hi - 1).toString(16)} must be zero (byte 0x${i.toString(16)} is 0x${b[i].toString(16)})`);
  }
}

const u64hex = (v: bigint): string => '0x' + v.toString(16).padStart(16, '0');

function decodePolicy(v: bigint): GuestPolicy {
  const bit = (n: number): boolean => ((v >> BigInt(n)) & 1n) === 1n;
  // Bit 17 is reserved and must be one; bits 63:26 are reserved and must be zero.
  if (!bit(17)) malformed(`guest policy bit 17 (reserved, must be one) is zero (policy ${u64hex(v)})`);
  if (v >> 26n !== 0n) malformed(`guest policy reserved bits 63:26 are set (policy ${u64hex(v)})`);
  return {
    raw: u64hex(v),
    abiMinor: Number(v & 0xffn),
    abiMajor: Number((v >> 8n) & 0xffn),
    smt: bit(16),
    migrateMa: bit(18),
    debug: bit(19),
    singleSocket: bit(20),
    cxlAllow: bit(21),
    memAes256Xts: bit(22),
    raplDis: bit(23),
    ciphertextHiding: bit(24),
    pageSwapDisable: bit(25),
  };
}

function decodePlatformInfo(v: bigint): PlatformInfo {
  // Reserved platform-info bits are not MBZ in the specification (newer firmware defines
  // more of them), so they are kept in `raw` rather than refused.
  const bit = (n: number): boolean => ((v >> BigInt(n)) & 1n) === 1n;
  return {
    raw: u64hex(v),
    smtEnabled: bit(0),
    tsmeEnabled: bit(1),
    eccEnabled: bit(2),
    raplDisabled: bit(3),
    ciphertextHidingEnabled: bit(4),
    aliasCheckComplete: bit(5),
    tioEnabled: bit(7),
  };
}

function decodeKeyInfo(v: number): Pick<SnpReport, 'authorKeyEn' | 'maskChipKey' | 'signingKey'> {
  if (v >>> 5 !== 0) malformed(`key info reserved bits 31:5 are set (0x${v.toString(16)})`);
  const key = (v >>> 2) & 7;
  const signingKey: SigningKey | undefined = key === 0 ? 'vcek' : key === 1 ? 'vlek' : key === 7 ? 'none' : undefined;
  if (!signingKey) malformed(`SIGNING_KEY ${key} is reserved (0 VCEK, 1 VLEK, 7 none)`);
  return { authorKeyEn: (v & 1) === 1, maskChipKey: (v & 2) === 2, signingKey };
}

/** Parses exactly one 1184-byte SNP attestation report. */
export function parseSnpReport(bytes: Uint8Array): SnpReport {
  if (bytes.length !== SNP_REPORT_SIZE) malformed(`length is ${bytes.length} bytes, a report is exactly ${SNP_REPORT_SIZE}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (o: number): number => dv.getUint32(o, true);
  const u64 = (o: number): bigint => dv.getBigUint64(o, true);
  const hex = (o: number, n: number): string => toHex(bytes.subarray(o, o + n));

  const version = u32(0x00);
  if (!SUPPORTED_REPORT_VERSIONS.includes(version)) {
    throw new SextantError({
      code: 'SNP_REPORT_VERSION_UNSUPPORTED',
      message: `SNP report version ${version} is not supported (supported: ${SUPPORTED_REPORT_VERSIONS.join(', ')})`,
    });
  }
  const keyInfo = decodeKeyInfo(u32(0x48));
  mbz(bytes, 0x4c, 0x50);
  let cpuid: SnpReport['cpuid'];
  if (version >= 3) {
    cpuid = { family: bytes[0x188], model: bytes[0x189], stepping: bytes[0x18a] };
    mbz(bytes, 0x18b, 0x1a0);
  } else {
    mbz(bytes, 0x188, 0x1a0);
  }
  mbz(bytes, 0x1eb, 0x1ec);
  mbz(bytes, 0x1ef, 0x1f0);
  mbz(bytes, version >= 5 ? 0x208 : 0x1f8, SNP_SIGNED_SIZE);
  // The signature block is r (72 bytes), s (72 bytes) and 368 reserved bytes.
  mbz(bytes, SNP_SIGNED_SIZE + 0x90, SNP_REPORT_SIZE, 'signature reserved');
  const layout = tcbLayoutFor(cpuid);
  const tcb = (o: number): TcbVersion => decodeTcb(u64(o), layout);

  return {
    version,
    guestSvn: u32(0x04),
    policy: decodePolicy(u64(0x08)),
    familyId: hex(0x10, 16),
    imageId: hex(0x20, 16),
    vmpl: u32(0x30),
    signatureAlgo: u32(0x34),
    tcbLayout: layout,
    currentTcb: tcb(0x38),
    platformInfo: decodePlatformInfo(u64(0x40)),
    ...keyInfo,
    reportData: hex(0x50, 64),
    measurement: hex(0x90, 48),
    hostData: hex(0xc0, 32),
    idKeyDigest: hex(0xe0, 48),
    authorKeyDigest: hex(0x110, 48),
    reportId: hex(0x140, 32),
    reportIdMa: hex(0x160, 32),
    reportedTcb: tcb(0x180),
    ...(cpuid && { cpuid }),
    chipId: hex(0x1a0, 64),
    committedTcb: tcb(0x1e0),
    currentVersion: { build: bytes[0x1e8], minor: bytes[0x1e9], major: bytes[0x1ea] },
    committedVersion: { build: bytes[0x1ec], minor: bytes[0x1ed], major: bytes[0x1ee] },
    launchTcb: tcb(0x1f0),
    ...(version >= 5 && { launchMitVector: u64hex(u64(0x1f8)), currentMitVector: u64hex(u64(0x200)) }),
    signature: { r: hex(SNP_SIGNED_SIZE, 72), s: hex(SNP_SIGNED_SIZE + 72, 72) },
  };
}
