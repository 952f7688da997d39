/** The measurements file format: what signing, verification and the key service share. */
export type { BootAssumptions, ImageIdentity, ManifestEvent, MeasurementBank, MeasurementFile, PcrExpectation } from './types.js';
export { MEASUREMENT_BANKS, MEASUREMENT_FILE_VERSION } from './types.js';
export { assertMeasurementFile, replayManifest } from './assert.js';
export { MeasurementsInvalidError, type FieldIssue } from './errors.js';
export { parseMeasurementFile, serializeMeasurementFile } from './parse.js';
export { canonicalJson } from './canonical-json.js';
export { SIGNATURE_CURVE, SIGNATURE_HASH, decodeSignature, encodeSignature, p256Problem } from './signature.js';
export type { ImagePrecompute, PcrPrediction, PredictedEvent } from './prediction.js';
export { componentOf, measurementFileFromPrediction, type FromPredictionOptions } from './from-prediction.js';
