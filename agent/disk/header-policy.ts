import { CIPHER, KEY_SIZE_BITS, PBKDF, PBKDF_HASHES, PBKDF_ITERATIONS, SECTOR_SIZE, TOKEN_TYPE } from './constants.js';
import type { Luks2Metadata } from './luks2-metadata.js';

/**
 * The allow-list: a header the agent accepts is exactly the shape it formats. The host
 * controls the disk, so it can swap in a header with cipher_null, a weak keyslot or a
 * second segment; each such difference is listed (all of them, not just the first) so
 * the refusal says what was found. Empty list = accepted.
 */
export function headerViolations(meta: Luks2Metadata, rawJson: string, opts: { requireToken: boolean }): string[] {
  const v: string[] = [];
  if (/cipher_null/i.test(rawJson)) v.push('cipher_null appears in the header');

  const segs = Object.entries(meta.segments);
  if (segs.length !== 1) v.push(`expected exactly 1 data segment, found ${segs.length}`);
  for (const [id, s] of segs) {
    if (s.type !== 'crypt') v.push(`segment ${id}: type ${String(s.type)} (want crypt)`);
    if (s.encryption !== CIPHER) v.push(`segment ${id}: cipher ${String(s.encryption)} (want ${CIPHER})`);
    if (s.sector_size !== SECTOR_SIZE) v.push(`segment ${id}: sector size ${String(s.sector_size)} (want ${SECTOR_SIZE})`);
    if (s.integrity !== undefined) v.push(`segment ${id}: integrity ${JSON.stringify(s.integrity)} (sextant formats without)`);
    const off = typeof s.offset === 'string' && /^\d+$/.test(s.offset) ? Number(s.offset) : NaN;
    const cfg = meta.config;
    const hdrEnd = 2 * Number(cfg.json_size ?? NaN) + Number(cfg.keyslots_size ?? NaN);
    if (!Number.isFinite(off) || off % SECTOR_SIZE !== 0) v.push(`segment ${id}: offset ${String(s.offset)} is not a multiple of ${SECTOR_SIZE}`);
    else if (!(off >= hdrEnd)) v.push(`segment ${id}: offset ${off} overlaps the header area (ends at ${hdrEnd})`);
  }

  const slots = Object.entries(meta.keyslots);
  if (slots.length === 0) v.push('no keyslots');
  for (const [id, k] of slots) {
    if (k.type !== 'luks2') v.push(`keyslot ${id}: type ${String(k.type)} (want luks2)`);
    if (k.key_size !== KEY_SIZE_BITS / 8) v.push(`keyslot ${id}: key size ${String(k.key_size)} bytes (want ${KEY_SIZE_BITS / 8})`);
    if (k.kdf?.type !== PBKDF) v.push(`keyslot ${id}: pbkdf ${String(k.kdf?.type)} (want ${PBKDF})`);
    if (!PBKDF_HASHES.includes(String(k.kdf?.hash))) v.push(`keyslot ${id}: pbkdf hash ${String(k.kdf?.hash)}`);
    if (typeof k.kdf?.iterations !== 'number' || k.kdf.iterations < PBKDF_ITERATIONS) {
      v.push(`keyslot ${id}: pbkdf iterations ${String(k.kdf?.iterations)} (want >= ${PBKDF_ITERATIONS})`);
    }
    if (k.area?.type !== 'raw') v.push(`keyslot ${id}: area type ${String(k.area?.type)} (want raw)`);
    // The keyslot area holds the wrapped volume key: a cipher_null/plain area stores it in clear.
    if (k.area?.encryption !== CIPHER) v.push(`keyslot ${id}: area cipher ${String(k.area?.encryption)} (want ${CIPHER})`);
    if (k.af?.type !== 'luks1') v.push(`keyslot ${id}: anti-forensic splitter ${String(k.af?.type)} (want luks1)`);
  }

  const digests = Object.entries(meta.digests);
  if (digests.length !== 1) v.push(`expected exactly 1 digest, found ${digests.length}`);
  for (const [id, d] of digests) {
    if (d.type !== 'pbkdf2') v.push(`digest ${id}: type ${String(d.type)} (want pbkdf2)`);
    if (!PBKDF_HASHES.includes(String(d.hash))) v.push(`digest ${id}: hash ${String(d.hash)}`);
  }

  const req = meta.config.requirements;
  if (req !== undefined && JSON.stringify(req) !== '{}' && JSON.stringify(req) !== '{"mandatory":[]}') {
    v.push(`header requirements ${JSON.stringify(req)} (e.g. a reencryption in progress)`);
  }

  const tokens = Object.entries(meta.tokens);
  const ours = tokens.filter(([, t]) => t.type === TOKEN_TYPE);
  if (opts.requireToken && ours.length !== 1) v.push(`expected exactly 1 ${TOKEN_TYPE} token, found ${ours.length}`);
  // A foreign token (e.g. systemd-tpm2, luks2-keyring) could make other tooling unlock the
  // disk with something other than the attested key: not what sextant set up.
  for (const [id, t] of tokens) if (t.type !== TOKEN_TYPE) v.push(`token ${id}: unexpected type ${String(t.type)}`);
  return v;
}
