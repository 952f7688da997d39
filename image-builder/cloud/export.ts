import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SextantError } from '../../lib/errors.js';
import { run } from '../../lib/exec.js';
import { parseMeasurementFile, serializeMeasurementFile, type MeasurementFile } from '../../measurements/format/index.js';
import { writeGcpTarGz } from './gcp-tar.js';
import { writeFixedVhd } from './vhd.js';

export const CLOUD_FORMATS = ['azure', 'gcp', 'aws'] as const;
export type CloudFormat = (typeof CLOUD_FORMATS)[number];

/** The disk image each cloud imports, by file name in the release folder. */
export const CLOUD_ARTIFACTS: Record<CloudFormat, string> = {
  azure: 'sextant-node-azure.vhd',
  gcp: 'sextant-node-gcp.tar.gz',
  aws: 'sextant-node-aws.raw',
};
export const cloudMeasurementsName = (f: CloudFormat): string => `measurements-${f}.json`;

/**
 * PCRs that only warn on a cloud, and why. The UKI's own measurements (PCR 9 by the kernel's
 * stub, 11 by systemd-stub, 12 and 13 zero) do not depend on the firmware and stay enforced.
 * PCR 4 (the firmware's boot-path events around the UKI's Authenticode hash) and PCR 7 (the
 * platform's Secure Boot databases) are the cloud firmware's: no reference boot of any cloud
 * was recorded (none is reachable from the build machines), so they warn until one is.
 */
export const CLOUD_WARN_ONLY: Record<CloudFormat, { pcrs: number[]; why: string }> = {
  azure: { pcrs: [4, 7], why: 'Hyper-V UEFI measures the boot path (PCR 4) and holds Microsoft\'s Secure Boot keys (PCR 7); no reference boot of Azure recorded' },
  gcp: { pcrs: [4, 7], why: 'GCP\'s firmware measures the boot path (PCR 4) and the key databases given at image creation (PCR 7); no reference boot of GCP recorded' },
  aws: { pcrs: [4, 7], why: 'the EC2 firmware measures the boot path (PCR 4) and the UEFI variables given at AMI registration (PCR 7); no reference boot of AWS recorded' },
};

export function parseCloudFormats(text: string): CloudFormat[] {
  const out: CloudFormat[] = [];
  for (const f of text.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (!(CLOUD_FORMATS as readonly string[]).includes(f)) throw new SextantError({ code: 'USAGE', message: `--format: unknown cloud format ${f} (known: ${CLOUD_FORMATS.join(', ')})` });
    if (!out.includes(f as CloudFormat)) out.push(f as CloudFormat);
  }
  if (out.length === 0) throw new SextantError({ code: 'USAGE', message: `--format: name one or more of ${CLOUD_FORMATS.join(', ')}` });
  return out;
}

/** The measurements of the image on a cloud: the release's, with that cloud's firmware PCRs warn-only. */
export function cloudMeasurementFile(file: MeasurementFile, format: CloudFormat): MeasurementFile {
  const rule = CLOUD_WARN_ONLY[format];
  const pcrs = Object.fromEntries(Object.entries(file.pcrs).map(([k, p]) => [k, rule.pcrs.includes(Number(k)) ? { ...p, enforced: false } : p]));
  return {
    ...file,
    pcrs,
    metadata: { ...file.metadata, variant: format, 'warn-only': `PCR ${rule.pcrs.filter((p) => String(p) in file.pcrs).join(', ') || '(none predicted)'}: ${rule.why}` },
  };
}

export interface CloudExportOptions {
  disk: string;
  /** The release's measurements.json bytes. */
  measurements: Buffer;
  outDir: string;
  formats: CloudFormat[];
  /** The build's SourceDateEpoch: the VHD time stamp and the tar member's mtime. */
  time: number;
  /** SHA-256 of the disk: seeds the VHD's unique id. */
  diskSha256: string;
  log?: (l: string) => void;
}

/** Writes each cloud's disk image and measurements file; returns the files written. */
export async function exportCloudImages(o: CloudExportOptions): Promise<string[]> {
  const base = parseMeasurementFile(o.measurements, 'measurements.json');
  const written: string[] = [];
  for (const f of o.formats) {
    const out = path.join(o.outDir, CLOUD_ARTIFACTS[f]);
    switch (f) {
      case 'azure':
        await writeFixedVhd(o.disk, out, { time: o.time, seed: o.diskSha256, log: o.log });
        break;
      case 'gcp':
        await writeGcpTarGz(o.disk, out, { time: o.time, log: o.log });
        break;
      case 'aws':
        // EC2 imports a raw disk as is (ImportSnapshot, format RAW).
        await run('cp', ['--sparse=always', o.disk, out], { log: o.log });
        break;
    }
    await writeFile(path.join(o.outDir, cloudMeasurementsName(f)), serializeMeasurementFile(cloudMeasurementFile(base, f)));
    written.push(CLOUD_ARTIFACTS[f], cloudMeasurementsName(f));
  }
  return written;
}
