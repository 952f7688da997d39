import { readFile, writeFile } from 'node:fs/promises';
import { zeroize } from '../lib/bytes.js';
import { loadSigningKey, signMeasurementFile } from '../measurements/sign/index.js';
import { measurementFileFromPrediction } from '../measurements/format/from-prediction.js';
import { serializeMeasurementFile } from '../measurements/format/index.js';
import { precomputeUkiFile } from '../measurements/uki/precompute-file.js';
import { sha256File } from '../lib/hash-file.js';

/**
 * systemd-pcrphase words the image extends into PCR 11 before the agent runs (the image
 * masks none of the pcrphase units; the agent unit is ordered after them).
 */
export const IMAGE_PCR_PHASES = ['enter-initrd', 'leave-initrd', 'sysinit', 'ready'];

/** measurements.json of a built UKI: every predicted PCR enforced, with its event manifest. */
export async function measureBuiltUki(ukiFile: string, image: { name: string; version: string; debug: boolean }): Promise<Buffer> {
  const boot = { pcrPhases: IMAGE_PCR_PHASES };
  const prediction = await precomputeUkiFile(ukiFile, 'sha256', boot);
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
