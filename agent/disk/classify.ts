import type { SextantErrorCode } from '../../lib/errors.js';
import { describeSignature } from './blkid.js';
import { MIN_DEVICE_BYTES, SECTOR_SIZE, STATE_LABEL, TOKEN_TYPE } from './constants.js';
import { headerViolations } from './header-policy.js';
import type { DiskFacts } from './inspect.js';
import { findSextantToken, type Luks2Metadata } from './luks2-metadata.js';

/**
 * What the agent may do with a disk. The only verdicts that lead to a luksFormat are
 * `blank` and `unfinished` with no keyslot and an untouched data area; everything the
 * agent did not provably create itself is `refuse`.
 */
export type DiskVerdict =
  | { kind: 'blank' }
  | { kind: 'ours'; meta: Luks2Metadata; filesystem: 'pending' | 'ext4'; tokenId: string }
  /** A LUKS2 header in sextant's exact shape but without its token: a format interrupted before the token was written. */
  | { kind: 'unfinished'; meta: Luks2Metadata; keyslots: number; dataUntouched: boolean }
  | { kind: 'refuse'; code: SextantErrorCode; found: string };

export function classifyDisk(f: DiskFacts): DiskVerdict {
  // dm-crypt with 4096-byte sectors cannot map a tail shorter than a sector: luksFormat would
  // fail after the checks, so say it here, before anything could be written.
  if (f.size % SECTOR_SIZE !== 0) {
    return { kind: 'refuse', code: 'DISK_UNALIGNED', found: `a device of ${f.size} bytes, not a multiple of the ${SECTOR_SIZE}-byte sector size (${f.size % SECTOR_SIZE} bytes over); resize the partition` };
  }
  if (f.blkidError !== undefined || f.signature === undefined) {
    return { kind: 'refuse', code: 'DISK_FOREIGN_DATA', found: `signatures blkid cannot classify (${f.blkidError ?? 'no result'})` };
  }
  const sig = f.signature;
  if (Object.keys(sig).length === 0) {
    if (f.size < MIN_DEVICE_BYTES) {
      return { kind: 'refuse', code: 'DISK_FOREIGN_DATA', found: `a device of ${f.size} bytes (sextant needs at least ${MIN_DEVICE_BYTES})` };
    }
    if (f.headZero && f.tailZero) return { kind: 'blank' };
    const where = [!f.headZero && 'the first 17 MiB', !f.tailZero && 'the last MiB'].filter(Boolean).join(' and ');
    return { kind: 'refuse', code: 'DISK_FOREIGN_DATA', found: `no known signature, but non-zero data in ${where} (unknown content)` };
  }
  if (sig.TYPE !== 'crypto_LUKS') return { kind: 'refuse', code: 'DISK_FOREIGN_DATA', found: describeSignature(sig) };
  if (sig.VERSION !== '2' || !f.luks2) {
    return { kind: 'refuse', code: 'DISK_FOREIGN_DATA', found: `a LUKS${sig.VERSION ?? '?'} header (${describeSignature(sig)}); sextant only uses LUKS2` };
  }
  const { meta, rawJson, dumpError, damage } = f.luks2;
  if (damage !== undefined) {
    return { kind: 'refuse', code: 'DISK_HEADER_DAMAGED', found: `a damaged LUKS2 header (${damage}); sextant repairs no header it has not proven its own: if this is the node's disk, back it up and run cryptsetup repair` };
  }
  if (!meta || rawJson === undefined) {
    return { kind: 'refuse', code: 'DISK_HEADER_REJECTED', found: `a LUKS2 header cryptsetup cannot read: ${dumpError ?? 'unknown error'}` };
  }
  const token = findSextantToken(meta, TOKEN_TYPE);
  const labelIssue = sig.LABEL === STATE_LABEL ? [] : [`label ${JSON.stringify(sig.LABEL ?? '')} (want ${STATE_LABEL})`];
  if (token) {
    const v = [...labelIssue, ...headerViolations(meta, rawJson, { requireToken: true })];
    const fs = token.token.filesystem;
    if (fs !== 'pending' && fs !== 'ext4') v.push(`${TOKEN_TYPE} token: filesystem ${JSON.stringify(fs)} (want pending or ext4)`);
    if (v.length > 0) return { kind: 'refuse', code: 'DISK_HEADER_REJECTED', found: `a LUKS2 header outside the allow-list: ${v.join('; ')}` };
    return { kind: 'ours', meta, filesystem: fs as 'pending' | 'ext4', tokenId: token.id };
  }
  // No token. Only our own interrupted format looks exactly like our header minus the token.
  const keyslots = Object.keys(meta.keyslots).length;
  const v = [...labelIssue, ...headerViolations(meta, rawJson, { requireToken: false })].filter((x) => !(keyslots === 0 && x === 'no keyslots'));
  if (v.length > 0) {
    return { kind: 'refuse', code: 'DISK_FOREIGN_DATA', found: `a LUKS2 header without the ${TOKEN_TYPE} token (${describeSignature(sig)}; ${v.join('; ')})` };
  }
  return { kind: 'unfinished', meta, keyslots, dataUntouched: f.luks2.dataHeadZero === true && f.tailZero };
}
