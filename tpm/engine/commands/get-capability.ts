/**
 * TPM2_GetCapability (Part 3 §30.2), looped on moreData. Returns the raw TPMS_CAPABILITY_DATA
 * of each response; capability.ts decodes the ones the engine reads.
 */
import { SextantError } from '../../../lib/errors.js';
import { takeWire } from '../mu.js';
import { ESYS_TR, out, type EsysContext, type Out } from '../esys.js';
import { decodeCapability, type CapabilityData } from '../capability.js';

/** TPM_CAP (Part 2 §6.12), the ones the engine asks for. */
export const TPM_CAP = { HANDLES: 1, PCRS: 5, TPM_PROPERTIES: 6 } as const;
export type TpmCap = (typeof TPM_CAP)[keyof typeof TPM_CAP];

/** Every entry from `first` on (the TPM returns them in pages: the loop follows moreData). */
export async function getCapability(esys: EsysContext, capability: TpmCap, first: number, count = 256): Promise<CapabilityData[]> {
  const pages: CapabilityData[] = [];
  let property = first;
  for (let page = 0; page < 64; page++) {
    const more: Out<number> = [null];
    const data = out();
    await esys.call('Esys_GetCapability', ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, capability, property, count, more, data);
    const decoded = decodeCapability(takeWire('TPMS_CAPABILITY_DATA', data[0]));
    pages.push(decoded);
    const next = nextProperty(decoded);
    if (more[0] !== 1 || next === undefined) return pages;
    property = next;
  }
  throw new SextantError({ code: 'TPM_RC', message: `TPM2_GetCapability(${capability}) kept reporting more data` });
}

function nextProperty(d: CapabilityData): number | undefined {
  switch (d.kind) {
    case 'handles':
      return d.handles.length ? d.handles[d.handles.length - 1] + 1 : undefined;
    case 'properties':
      return d.properties.length ? d.properties[d.properties.length - 1].property + 1 : undefined;
    case 'pcrs':
      return undefined;
  }
}
