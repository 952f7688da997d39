import { fail } from '../../lib/errors.js';

/**
 * The parts of `cryptsetup luksDump --dump-json-metadata` the allow-list reads. Every field
 * is optional here on purpose: a header is attacker-controlled input (the host can swap it),
 * so the policy treats a missing field as a violation instead of trusting a type.
 */
export interface Luks2Keyslot {
  type?: unknown;
  key_size?: unknown;
  af?: { type?: unknown; hash?: unknown; stripes?: unknown };
  area?: { type?: unknown; encryption?: unknown; key_size?: unknown };
  kdf?: { type?: unknown; hash?: unknown; iterations?: unknown };
  priority?: unknown;
}

export interface Luks2Segment {
  type?: unknown;
  offset?: unknown;
  encryption?: unknown;
  sector_size?: unknown;
  integrity?: unknown;
  flags?: unknown;
}

export interface Luks2Token {
  type?: unknown;
  keyslots?: unknown;
  [field: string]: unknown;
}

export interface Luks2Metadata {
  keyslots: Record<string, Luks2Keyslot>;
  tokens: Record<string, Luks2Token>;
  segments: Record<string, Luks2Segment>;
  digests: Record<string, { type?: unknown; hash?: unknown; keyslots?: unknown; segments?: unknown }>;
  config: { json_size?: unknown; keyslots_size?: unknown; flags?: unknown; requirements?: unknown };
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Parses luksDump's JSON; anything not shaped like LUKS2 metadata is DISK_HEADER_REJECTED. */
export function parseLuks2Metadata(text: string): Luks2Metadata {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (cause) {
    fail('DISK_HEADER_REJECTED', 'the LUKS2 JSON metadata does not parse', cause);
  }
  if (!isRecord(j)) fail('DISK_HEADER_REJECTED', 'the LUKS2 JSON metadata is not an object');
  for (const k of ['keyslots', 'tokens', 'segments', 'digests', 'config'] as const) {
    if (!isRecord(j[k])) fail('DISK_HEADER_REJECTED', `the LUKS2 JSON metadata has no "${k}" object`);
    for (const v of Object.values(j[k] as Record<string, unknown>)) {
      if (k !== 'config' && !isRecord(v)) fail('DISK_HEADER_REJECTED', `a "${k}" entry is not an object`);
    }
  }
  return j as unknown as Luks2Metadata;
}

/** Our token, if the header carries one (its id and JSON). */
export function findSextantToken(meta: Luks2Metadata, type: string): { id: string; token: Luks2Token } | undefined {
  for (const [id, token] of Object.entries(meta.tokens)) if (token.type === type) return { id, token };
  return undefined;
}
