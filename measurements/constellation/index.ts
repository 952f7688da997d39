export type { ConstellationEntry, ConstellationMeasurement, ConstellationMeasurementsV2 } from './types.js';
export { DEFAULT_CSP, DEFAULT_VARIANT } from './types.js';
export { assertConstellationV2 } from './assert.js';
export { selectEntry, type EntrySelector } from './select-entry.js';
export { fromConstellation, importConstellationBytes, type ImportOptions } from './import.js';
export { toConstellation, serializeConstellation, type ExportOptions } from './export.js';
