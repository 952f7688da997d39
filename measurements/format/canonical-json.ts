/**
 * Canonical JSON text, so the same value always gives the same bytes (signatures cover
 * bytes): object keys in one fixed order, two-space indentation, a final newline.
 * Key order is the one JavaScript itself uses for plain objects: integer-like keys
 * ascending ("4" before "11"), then the other keys sorted by UTF-16 code units.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2) + '\n';
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = Object.create(null);
  // Inserting the string keys sorted is enough: integer-like keys always come first, ascending.
  for (const k of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = sortKeys(v);
  }
  return out;
}
