export { loadSigningKey } from './signing-key.js';
export { signBlob } from './sign-blob.js';
export { signMeasurementFile } from './sign-measurements.js';
