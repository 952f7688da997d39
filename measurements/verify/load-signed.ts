import { parseMeasurementFile } from '../format/parse.js';
import type { MeasurementFile } from '../format/types.js';
import { loadVerificationKey } from './verification-key.js';
import { verifyBlob } from './verify-blob.js';

/**
 * What the key service calls: checks the signature over the file's exact bytes first, then
 * parses and validates the file. Returns the file, or throws KEY_INVALID (the public key),
 * SIGNATURE_INVALID (the signature) or MEASUREMENTS_INVALID (a signed but invalid file).
 */
export function loadSignedMeasurements(
  fileBytes: Uint8Array,
  signature: string | Uint8Array,
  publicKeyPem: string | Uint8Array,
): MeasurementFile {
  const key = loadVerificationKey(publicKeyPem);
  verifyBlob(fileBytes, signature, key);
  return parseMeasurementFile(fileBytes);
}
