import { SextantError } from '../../lib/errors.js';
import { DEFAULT_CSP, DEFAULT_VARIANT, type ConstellationEntry, type ConstellationMeasurementsV2 } from './types.js';

export interface EntrySelector {
  /** Cloud, compared case-insensitively ("qemu" = "QEMU"). */
  csp?: string;
  attestationVariant?: string;
}

/**
 * Picks the one list entry to import: the one matching `csp` / `attestationVariant`; with
 * neither given, the only entry, or else the QEMU / qemu-vtpm one. Anything ambiguous or
 * absent is INVALID_ARGUMENT naming the entries there are.
 */
export function selectEntry(doc: ConstellationMeasurementsV2, sel: EntrySelector = {}): ConstellationEntry {
  const label = (e: ConstellationEntry): string => `${e.csp}/${e.attestationVariant}`;
  const available = doc.list.map(label).join(', ');
  const matches = (e: ConstellationEntry, csp?: string, variant?: string): boolean =>
    (csp === undefined || e.csp.toLowerCase() === csp.toLowerCase()) && (variant === undefined || e.attestationVariant === variant);

  if (sel.csp === undefined && sel.attestationVariant === undefined) {
    if (doc.list.length === 1) return doc.list[0];
    const fallback = doc.list.filter((e) => matches(e, DEFAULT_CSP, DEFAULT_VARIANT));
    if (fallback.length === 1) return fallback[0];
    throw new SextantError({
      code: 'INVALID_ARGUMENT',
      message: `the file has ${doc.list.length} entries and none is ${DEFAULT_CSP}/${DEFAULT_VARIANT}: choose one with --csp/--variant (${available})`,
    });
  }
  const found = doc.list.filter((e) => matches(e, sel.csp, sel.attestationVariant));
  if (found.length === 1) return found[0];
  const asked = `${sel.csp ?? '*'}/${sel.attestationVariant ?? '*'}`;
  throw new SextantError({
    code: 'INVALID_ARGUMENT',
    message: found.length === 0
      ? `no entry ${asked} in the file (there are: ${available})`
      : `${found.length} entries match ${asked}: name both --csp and --variant (${available})`,
  });
}
