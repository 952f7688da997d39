/**
 * TPM2_GetCapability (Part 3 §30.2) looped on moreData, and what the engine reads with it:
 * loaded transient objects and sessions (leftovers of a crashed process are flushed when a
 * connection opens: swtpm and /dev/tpm0 have no resource manager, and three crashed runs
 * would exhaust the TPM's object slots; under /dev/tpmrm0 each connection sees only its own).
 */
import { SextantError } from '../../lib/errors.js';
import { execute, type TpmTransport } from '../commands/command.js';
import { flushContext } from '../commands/flush-context.js';
import { getCapability as getCapabilityCommand } from '../commands/get-capability.js';
import { TPM_CAP, TPM_HT } from '../constants.js';
import type { TpmsCapabilityData } from '../structures.js';

export type CapabilityKind = (typeof TPM_CAP)[keyof typeof TPM_CAP];

/** Up to `count` entries from `first` on (pages are fetched until the TPM has no more or `count` came). */
export async function getCapability(t: TpmTransport, capability: CapabilityKind, first: number, count = 256): Promise<TpmsCapabilityData[]> {
  const pages: TpmsCapabilityData[] = [];
  let property = first;
  let got = 0;
  for (let page = 0; page < 64; page++) {
    const out = await execute(t, getCapabilityCommand, { capability, property, propertyCount: count - got });
    pages.push(out.capabilityData);
    const keys = keysOf(out.capabilityData);
    got += keys.length;
    // PCRS comes in one page: TPMS_PCR_SELECTION entries are not numbered.
    if (!out.moreData || keys.length === 0 || out.capabilityData.capability === TPM_CAP.PCRS || got >= count) return pages;
    property = keys[keys.length - 1] + 1;
  }
  throw new SextantError({ code: 'TPM_RC', message: `TPM2_GetCapability(${capability}) kept reporting more data` });
}

/** The keys of a page's entries, in TPM order (the next page starts after the last one). */
function keysOf(d: TpmsCapabilityData): number[] {
  switch (d.capability) {
    case TPM_CAP.HANDLES:
      return d.handles;
    case TPM_CAP.TPM_PROPERTIES:
      return d.tpmProperties.map((p) => p.property);
    case TPM_CAP.COMMANDS:
      return d.commands.map((c) => c & 0xffff);
    case TPM_CAP.ALGS:
      return d.algorithms.map((a) => a.alg);
    case TPM_CAP.ECC_CURVES:
      return d.eccCurves;
    case TPM_CAP.PCRS:
      return d.assignedPCR.map((s) => s.hash);
  }
}

async function handlesOf(t: TpmTransport, types: number[]): Promise<number[]> {
  const pages = await getCapability(t, TPM_CAP.HANDLES, (types[0] << 24) >>> 0);
  return pages.flatMap((p) => (p.capability === TPM_CAP.HANDLES ? p.handles : [])).filter((h) => types.includes(h >>> 24));
}

/** TPM handles of the loaded transient objects. */
export function transientHandles(t: TpmTransport): Promise<number[]> {
  return handlesOf(t, [TPM_HT.TRANSIENT]);
}

/** TPM handles of the sessions the TPM holds (loaded 0x02xxxxxx, saved 0x03xxxxxx). */
export function sessionHandles(t: TpmTransport): Promise<number[]> {
  return handlesOf(t, [TPM_HT.HMAC_SESSION, TPM_HT.POLICY_SESSION]);
}

/** Flushes every loaded transient object; returns the handles flushed. */
export async function flushLeftovers(t: TpmTransport): Promise<number[]> {
  const handles = await transientHandles(t);
  for (const h of handles) await execute(t, flushContext, { flushHandle: h });
  return handles;
}

/** The NV indices defined in [first, last] (e.g. the EK certificate range 0x01C00000..). */
export async function nvIndexHandles(t: TpmTransport, first: number, last: number): Promise<number[]> {
  const pages = await getCapability(t, TPM_CAP.HANDLES, first, Math.min(256, last - first + 1));
  return pages.flatMap((p) => (p.capability === TPM_CAP.HANDLES ? p.handles : [])).filter((h) => h >= first && h <= last);
}
