/**
 * TPM2_PCR_Read (Part 3 §22.4), TPM2_PCR_Extend (§22.2), TPM2_PCR_Event (§22.3). A PCR_Read
 * response carries at most 8 digests, so the read is repeated for whatever the TPM left out;
 * pcrSelectionOut says which PCRs a response holds, in TPM order. PCRs 0-23 have an empty
 * authValue, given with a password authorization (or a session, see sessions).
 */
import type { HashAlg } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import type { PcrBanks } from '../../measurements/pcr/extend.js';
import { execute, type Authorization, type TpmTransport } from '../commands/command.js';
import { pcrEvent as pcrEventCommand } from '../commands/pcr-event.js';
import { pcrExtend as pcrExtendCommand } from '../commands/pcr-extend.js';
import { pcrRead as pcrReadCommand } from '../commands/pcr-read.js';
import { hashAlgId, hashAlgName } from '../constants.js';
import { pcrSelection, selectedPcrs, type PcrSelectionMap } from '../pcr-selection.js';
import type { TpmtHa } from '../structures.js';

export type DigestsByBank = Partial<Record<HashAlg, Uint8Array>>;

export async function pcrRead(t: TpmTransport, wanted: PcrSelectionMap): Promise<PcrBanks> {
  const remaining = new Map<HashAlg, Set<number>>();
  for (const [alg, pcrs] of Object.entries(wanted) as [HashAlg, readonly number[]][]) remaining.set(alg, new Set(pcrs));
  const result: PcrBanks = {};
  for (const alg of remaining.keys()) result[alg] = {};

  while ([...remaining.values()].some((s) => s.size > 0)) {
    const ask: PcrSelectionMap = {};
    for (const [alg, s] of remaining) if (s.size) ask[alg] = [...s].sort((a, b) => a - b);
    const out = await execute(t, pcrReadCommand, { pcrSelectionIn: pcrSelection(ask) });
    const got = selectedPcrs(out.pcrSelectionOut);
    if (got.length !== out.pcrValues.length) {
      throw new SextantError({ code: 'TPM_RC', message: `TPM2_PCR_Read: ${got.length} PCRs selected but ${out.pcrValues.length} digests` });
    }
    if (got.length === 0) {
      const missing = [...remaining].filter(([, s]) => s.size).map(([alg, s]) => `${alg}:${[...s].join(',')}`);
      throw new SextantError({ code: 'INVALID_ARGUMENT', message: `the TPM has no PCR ${missing.join(' ')} (bank not allocated?)` });
    }
    got.forEach(({ hash, index }, i) => {
      const alg = hashAlgName(hash);
      if (!alg || !remaining.get(alg)?.delete(index)) {
        throw new SextantError({ code: 'TPM_RC', message: `TPM2_PCR_Read returned PCR ${index} of bank 0x${hash.toString(16)}, which was not asked for` });
      }
      result[alg]![String(index)] = Buffer.from(out.pcrValues[i]).toString('hex');
    });
  }
  return result;
}

/** Extends `pcr` in every bank given: new = H(old || digest). */
export async function pcrExtend(t: TpmTransport, pcr: number, digests: DigestsByBank): Promise<void> {
  const values = Object.entries(digests).map(([alg, digest]) => ({ hashAlg: hashAlgId(alg as HashAlg), digest }) as TpmtHa);
  if (values.length === 0) throw new SextantError({ code: 'INVALID_ARGUMENT', message: 'PCR_Extend needs at least one digest' });
  await execute(t, pcrExtendCommand, { pcrHandle: checkPcr(pcr), digests: values });
}

/**
 * Hashes `data` (at most 1024 bytes) with every bank's algorithm inside the TPM and extends
 * each bank with its digest; returns those digests.
 */
export async function pcrEvent(t: TpmTransport, pcr: number, data: Uint8Array, auth?: Authorization): Promise<DigestsByBank> {
  const out = await execute(t, pcrEventCommand, { pcrHandle: checkPcr(pcr), eventData: data }, auth ? [auth] : undefined);
  const result: DigestsByBank = {};
  for (const ha of out.digests) {
    const alg = hashAlgName(ha.hashAlg);
    if (alg) result[alg] = ha.digest;
  }
  return result;
}

function checkPcr(pcr: number): number {
  if (!Number.isInteger(pcr) || pcr < 0 || pcr > 23) throw new SextantError({ code: 'INVALID_ARGUMENT', message: `PCR ${pcr} is not 0-23` });
  return pcr;
}
