import { readFile } from 'node:fs/promises';
import { SextantError } from '../../lib/errors.js';
import type { ImagePrecompute, PcrPrediction } from '../format/prediction.js';
import { precomputeUki } from './precompute.js';

/**
 * The UKI precompute in the shape measurements files are made from and verified against
 * (`ImagePrecompute`): `measurements create`, `verify --image` and the image builder use it.
 */
export const precomputeUkiFile: ImagePrecompute = async (ukiPath, bank, boot): Promise<PcrPrediction> => {
  let bytes: Buffer;
  try {
    bytes = await readFile(ukiPath);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'IO_FAILED';
    throw new SextantError({ code, message: `cannot read UKI ${ukiPath}: ${(cause as Error).message}`, cause });
  }
  const p = precomputeUki(bytes, { bank, phases: boot.pcrPhases, secureBoot: boot.secureBoot });
  return { pcrs: p.pcrs, events: p.events, stub: { version: p.stub.version } };
};
