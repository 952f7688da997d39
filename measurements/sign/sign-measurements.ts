import type { KeyObject } from 'node:crypto';
import { parseMeasurementFile } from '../format/parse.js';
import type { MeasurementFile } from '../format/types.js';
import { signBlob } from './sign-blob.js';

/**
 * Signs a measurements file's exact bytes after checking they are a valid file: a
 * signature over something the key service would reject is a release bug, caught here.
 */
export function signMeasurementFile(fileBytes: Uint8Array, key: KeyObject): { signature: string; file: MeasurementFile } {
  const file = parseMeasurementFile(fileBytes);
  return { signature: signBlob(fileBytes, key), file };
}
