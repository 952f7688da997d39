/**
 * PCR selections (TPML_PCR_SELECTION) to and from plain `{ bank: [indices] }` maps. The order
 * of selected PCRs, bank by bank in list order and ascending index within a bank, is the order
 * in which TPM2_Quote hashes PCR values into pcrDigest and TPM2_PCR_Read returns them.
 */
import type { HashAlg } from '../lib/bytes.js';
import { fail } from '../lib/errors.js';
import { algName, hashAlgId, hashAlgName } from './constants.js';
import type { TpmlPcrSelection } from './structures.js';

/** PCR_SELECT_MIN for a 24-PCR TPM: selections carry at least 3 bitmap bytes. */
const MIN_SELECT_BYTES = 3;

export type PcrSelectionMap = Partial<Record<HashAlg, readonly number[]>>;

/** Builds a selection with one entry per bank, in the map's key order. */
export function pcrSelection(banks: PcrSelectionMap): TpmlPcrSelection {
  return Object.entries(banks).map(([alg, indices]) => {
    const max = Math.max(-1, ...(indices ?? []));
    const bitmap = new Uint8Array(Math.max(MIN_SELECT_BYTES, Math.floor(max / 8) + 1));
    for (const i of indices ?? []) {
      if (!Number.isInteger(i) || i < 0 || i > 255) fail('INVALID_ARGUMENT', `PCR index ${i} is out of range`);
      bitmap[i >> 3] |= 1 << (i & 7);
    }
    return { hash: hashAlgId(alg as HashAlg), pcrSelect: bitmap };
  });
}

export interface SelectedPcr {
  /** TPM_ALG_ID of the bank. */
  hash: number;
  index: number;
}

/** Selected PCRs in TPM order (bank by bank, ascending index). */
export function selectedPcrs(selection: TpmlPcrSelection): SelectedPcr[] {
  const out: SelectedPcr[] = [];
  for (const s of selection) {
    for (let byte = 0; byte < s.pcrSelect.length; byte++) {
      for (let bit = 0; bit < 8; bit++) if (s.pcrSelect[byte] & (1 << bit)) out.push({ hash: s.hash, index: byte * 8 + bit });
    }
  }
  return out;
}

/** The selection as `{ sha256: [0, 1, ...] }`; fails for a bank whose hash sextant does not know. */
export function selectionToMap(selection: TpmlPcrSelection): PcrSelectionMap {
  const out: Record<string, number[]> = {};
  for (const { hash, index } of selectedPcrs(selection)) {
    const alg = hashAlgName(hash);
    if (!alg) fail('TPM_UNMARSHAL', `PCR bank ${algName(hash)} is not a supported hash`);
    (out[alg] ??= []).push(index);
  }
  return out;
}

/** Parses "0-7,11,15" into sorted unique indices (0..23). */
export function parsePcrList(spec: string): number[] {
  const out = new Set<number>();
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) fail('INVALID_ARGUMENT', `not a PCR list: "${spec}" (expected e.g. 0-7,11)`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo > hi || hi > 23) fail('INVALID_ARGUMENT', `PCR range "${part.trim()}" is outside 0-23`);
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return [...out].sort((a, b) => a - b);
}
