import { assertMeasurementFile } from './assert.js';
import type { PcrPrediction, PredictedEvent } from './prediction.js';
import {
  MEASUREMENT_FILE_VERSION,
  type BootAssumptions,
  type ImageIdentity,
  type ManifestEvent,
  type MeasurementBank,
  type MeasurementFile,
  type PcrExpectation,
} from './types.js';

export interface FromPredictionOptions {
  image: ImageIdentity;
  bank: MeasurementBank;
  boot?: BootAssumptions;
  /** PCRs whose mismatch should only warn; every other predicted PCR is enforced. */
  warnOnly?: readonly number[];
  metadata?: Record<string, string>;
}

/**
 * The part of the image an event stands for, so a mismatch can name it. The precompute's
 * own `component` wins; otherwise it is read from the event's type and description
 * (section names like ".cmdline" lead the descriptions of the stub's events).
 */
export function componentOf(e: PredictedEvent): string | undefined {
  if (e.component) return e.component;
  const section = /^(\.[a-z0-9]+)\b/.exec(e.description);
  if (section) return section[1];
  switch (e.type) {
    case 'EV_EFI_ACTION':
    case 'EV_SEPARATOR':
      return 'firmware';
    case 'EV_EFI_BOOT_SERVICES_APPLICATION':
      return /\bUKI\b/.test(e.description) ? 'uki' : undefined;
    case 'SYSTEMD_PCRPHASE':
      return 'systemd-pcrphase';
  }
  if (/LoadOptions/.test(e.description)) return '.cmdline';
  if (/initrd/i.test(e.description)) return 'initrd';
  return undefined;
}

/** A measurements file holding a recomputation: every predicted PCR with its event manifest. */
export function measurementFileFromPrediction(prediction: PcrPrediction, opts: FromPredictionOptions): MeasurementFile {
  const warnOnly = new Set(opts.warnOnly ?? []);
  const pcrs: Record<string, PcrExpectation> = {};
  for (const [pcr, value] of Object.entries(prediction.pcrs)) {
    const events: ManifestEvent[] = prediction.events
      .filter((e) => String(e.pcr) === pcr)
      .map((e) => {
        const component = componentOf(e);
        return { type: e.type, digest: e.digest.toLowerCase(), description: e.description, ...(component && { component }) };
      });
    pcrs[pcr] = { expected: value.toLowerCase(), enforced: !warnOnly.has(Number(pcr)), events };
  }
  const file: MeasurementFile = { version: MEASUREMENT_FILE_VERSION, image: opts.image, bank: opts.bank, pcrs };
  if (opts.boot && Object.keys(opts.boot).length > 0) file.boot = opts.boot;
  if (opts.metadata && Object.keys(opts.metadata).length > 0) file.metadata = opts.metadata;
  assertMeasurementFile(file, 'measurements from the recomputation'); // replays every manifest against its value
  return file;
}
