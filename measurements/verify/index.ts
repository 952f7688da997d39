export { loadVerificationKey, keyFingerprint } from './verification-key.js';
export { verifyBlob, SignatureInvalidError, type SignatureFailure } from './verify-blob.js';
export { loadSignedMeasurements } from './load-signed.js';
export { compareWithPrediction, type ComparisonReport, type PcrVerdictRow, type PcrVerdict } from './compare.js';
export { diffEvents, eventName, type ComparableEvent, type EventDifference } from './diff-events.js';
export type { ImagePrecompute, PcrPrediction, PredictedEvent } from '../format/prediction.js';
