import { SextantError } from '../../lib/errors.js';
import { assertMeasurementFile } from './assert.js';
import { canonicalJson } from './canonical-json.js';
import type { MeasurementFile } from './types.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses and validates a measurements file's bytes (strict UTF-8 JSON). */
export function parseMeasurementFile(bytes: Uint8Array, what = 'measurements file'): MeasurementFile {
  const value = parseJsonBytes(bytes, what);
  assertMeasurementFile(value, what);
  return value;
}

/** UTF-8 JSON bytes to a value; anything else is MEASUREMENTS_INVALID. */
export function parseJsonBytes(bytes: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (e) {
    throw new SextantError({ code: 'MEASUREMENTS_INVALID', message: `${what}: not UTF-8 text`, cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SextantError({ code: 'MEASUREMENTS_INVALID', message: `${what}: not JSON (${(e as Error).message})`, cause: e });
  }
}

/** The canonical bytes of a valid file: what `create` and `import` write, and what gets signed. */
export function serializeMeasurementFile(file: MeasurementFile): Buffer {
  assertMeasurementFile(file);
  return Buffer.from(canonicalJson(file), 'utf8');
}
