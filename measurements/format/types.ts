import type { HashAlg } from '../../lib/bytes.js';

/** The only format version this code reads and writes; a new incompatible shape bumps it. */
export const MEASUREMENT_FILE_VERSION = 1;

/** Hash banks a measurements file may describe (one bank per file). */
export const MEASUREMENT_BANKS = ['sha256', 'sha384'] as const satisfies readonly HashAlg[];
export type MeasurementBank = (typeof MEASUREMENT_BANKS)[number];

/** Which image the expected values belong to. */
export interface ImageIdentity {
  name: string;
  version: string;
  /** SHA-256 of the UKI file's bytes (not its Authenticode hash), lowercase hex. */
  ukiSha256?: string;
  /** SHA-256 of the disk image the UKI ships in, lowercase hex. */
  diskImageSha256?: string;
  /** The systemd-stub version the precompute modelled, e.g. "257" (it decides PCR 4 and 11). */
  stubVersion?: string;
}

/**
 * One measurement of the reference boot: what was extended into the PCR (`digest`) and
 * which part of the image it stands for (`component`, e.g. ".cmdline"), so a mismatch can
 * be named. EV_NO_ACTION events are listed for information and never extended.
 */
export interface ManifestEvent {
  type: string;
  digest: string;
  description: string;
  component?: string;
}

/**
 * What the expected values assume about the boot, so a recomputation can repeat it: the
 * systemd-pcrphase strings the image extends into PCR 11 (none when the image masks
 * systemd-pcrphase) and whether Secure Boot was on (a 252 stub's kernel LoadImage is then
 * not measured into PCR 4).
 */
export interface BootAssumptions {
  pcrPhases?: string[];
  secureBoot?: boolean;
}

export interface PcrExpectation {
  /** The PCR value after a correct boot, lowercase hex in the file's bank. */
  expected: string;
  /** true: a mismatch refuses attestation; false: warn only. */
  enforced: boolean;
  /** When present: every event extended into this PCR, in order, starting from zero. */
  events?: ManifestEvent[];
}

export interface MeasurementFile {
  version: typeof MEASUREMENT_FILE_VERSION;
  image: ImageIdentity;
  bank: MeasurementBank;
  boot?: BootAssumptions;
  /** Keyed by PCR index as a decimal string ("4", "11"). */
  pcrs: Record<string, PcrExpectation>;
  /** Free-form provenance (strings only); `created` is an RFC 3339 UTC time when present. */
  metadata?: Record<string, string>;
}
