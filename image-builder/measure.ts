import { readFile, writeFile } from 'node:fs/promises';
import { zeroize } from '../lib/bytes.js';
import { loadSigningKey, signMeasurementFile } from '../measurements/sign/index.js';
import { measurementFileFromPrediction } from '../measurements/format/from-prediction.js';
import { serializeMeasurementFile } from '../measurements/format/index.js';
import { precomputeUkiFile } from '../measurements/uki/precompute-file.js';
import { sha256File } from '../lib/hash-file.js';
import { predictUkiPcr7, withPcr7, type SecureBootState } from '../measurements/secureboot/predict.js';
import type { BootAssumptions } from '../measurements/format/types.js';

/**
 * systemd-pcrphase words the image extends into PCR 11 before the agent runs (the image
 * masks none of the pcrphase units; the agent unit is ordered after them).
 */
export const IMAGE_PCR_PHASES = ['enter-initrd', 'leave-initrd', 'sysinit', 'ready'];

/**
 * measurements.json of a built UKI: every predicted PCR enforced, with its event manifest;
 * with `secureBoot` (the key databases of the firmware) PCR 7 too, and PCR 4 as it is with
 * Secure Boot on.
 */
export async function measureBuiltUki(ukiFile: string, image: { name: string; version: string; debug: boolean }, secureBoot?: SecureBootState): Promise<Buffer> {
  const boot: BootAssumptions = { pcrPhases: IMAGE_PCR_PHASES, ...(secureBoot?.secureBoot && { secureBoot: true }) };
  let prediction = await precomputeUkiFile(ukiFile, 'sha256', boot);
  if (secureBoot) prediction = withPcr7(prediction, predictUkiPcr7(await readFile(ukiFile), secureBoot, 'sha256'));
  const file = measurementFileFromPrediction(prediction, {
    image: {
      name: image.debug ? `${image.name}-debug` : image.name,
      version: image.version,
      ukiSha256: await sha256File(ukiFile),
      ...(prediction.stub && { stubVersion: prediction.stub.version }),
    },
    bank: 'sha256',
    boot,
    metadata: { builder: 'sextant image build', ...(image.debug && { variant: 'debug' }) },
  });
  return Buffer.from(serializeMeasurementFile(file));
}

/** Writes FILE.sig (cosign sign-blob format) next to a measurements file. */
export async function signMeasurementsFile(file: string, keyFile: string): Promise<void> {
  const pem = await readFile(keyFile);
  let signature: string;
  try {
    signature = signMeasurementFile(await readFile(file), loadSigningKey(pem, process.env.SEXTANT_KEY_PASSPHRASE)).signature;
  } finally {
    zeroize(pem);
  }
  await writeFile(`${file}.sig`, signature);
}
