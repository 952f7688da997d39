/** TPM2_GetCapability (Part 3 §30.2), looped on moreData: every entry from `first` on. */
import { SextantError } from '../../../lib/errors.js';
import { unmarshal } from '../../codec.js';
import { TPM_CAP } from '../../constants.js';
import { TPMS_CAPABILITY_DATA, type TpmsCapabilityData } from '../../structures.js';
import { takeWire } from '../mu.js';
import { ESYS_TR, out, type EsysContext, type Out } from '../esys.js';

export type CapabilityKind = (typeof TPM_CAP)[keyof typeof TPM_CAP];

export async function getCapability(esys: EsysContext, capability: CapabilityKind, first: number, count = 256): Promise<TpmsCapabilityData[]> {
  const pages: TpmsCapabilityData[] = [];
  let property = first;
  for (let page = 0; page < 64; page++) {
    const more: Out<number> = [null];
    const data = out();
    await esys.call('Esys_GetCapability', ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, capability, property, count, more, data);
    const decoded = unmarshal(TPMS_CAPABILITY_DATA, takeWire('TPMS_CAPABILITY_DATA', data[0]));
    pages.push(decoded);
    const next = nextProperty(decoded);
    if (more[0] !== 1 || next === undefined) return pages;
    property = next;
  }
  throw new SextantError({ code: 'TPM_RC', message: `TPM2_GetCapability(${capability}) kept reporting more data` });
}

/** Where the next page starts: one past the last handle / property / command returned. */
function nextProperty(d: TpmsCapabilityData): number | undefined {
  const last = (xs: number[]): number | undefined => (xs.length ? xs[xs.length - 1] + 1 : undefined);
  switch (d.capability) {
    case TPM_CAP.HANDLES:
      return last(d.handles);
    case TPM_CAP.TPM_PROPERTIES:
      return last(d.tpmProperties.map((p) => p.property));
    case TPM_CAP.COMMANDS:
      return last(d.commands.map((c) => c & 0xffff));
    case TPM_CAP.ALGS:
      return last(d.algorithms.map((a) => a.alg));
    case TPM_CAP.ECC_CURVES:
      return last(d.eccCurves);
    case TPM_CAP.PCRS:
      return undefined;
  }
}
