/**
 * TPM2_CreatePrimary (Part 3 §24.1) and TPM2_ReadPublic (Part 3 §12.4). A primary key is
 * derived from the hierarchy's seed and the template alone, so the same template gives the
 * same key every time: the EK matches its certificate, and the AK is stable across boots
 * without being stored anywhere. The caller owns the returned handle and must flush it.
 */
import { marshal, unmarshal, type Sized } from '../../codec.js';
import {
  TPM2B_DATA,
  TPM2B_PUBLIC,
  TPM2B_SENSITIVE_CREATE,
  TPML_PCR_SELECTION,
  type TpmtPublic,
} from '../../structures.js';
import { takeWire, toC } from '../mu.js';
import { ESYS_TR, out, type EsysContext, type EsysTr, type Out } from '../esys.js';

export type Hierarchy = 'owner' | 'endorsement';

const HIERARCHY_TR: Record<Hierarchy, EsysTr> = {
  owner: ESYS_TR.RH_OWNER,
  endorsement: ESYS_TR.RH_ENDORSEMENT,
};

export interface LoadedKey {
  /** ESYS handle of the transient object (flush it when done). */
  handle: EsysTr;
  /** The public area; `raw` is the TPMT_PUBLIC bytes the Name covers. */
  public: Sized<TpmtPublic>;
  /** nameAlg || H(TPMT_PUBLIC), as ESYS computed it from the TPM's answer. */
  name: Uint8Array;
}

export async function createPrimary(esys: EsysContext, hierarchy: Hierarchy, template: TpmtPublic): Promise<LoadedKey> {
  const handle: Out<number> = [null];
  const outPublic = out();
  await esys.call(
    'Esys_CreatePrimary',
    HIERARCHY_TR[hierarchy], ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE,
    toC('TPM2B_SENSITIVE_CREATE', marshal(TPM2B_SENSITIVE_CREATE, { value: { userAuth: new Uint8Array(0), data: new Uint8Array(0) } })),
    toC('TPM2B_PUBLIC', marshal(TPM2B_PUBLIC, { value: template })),
    toC('TPM2B_DATA', marshal(TPM2B_DATA, new Uint8Array(0))),
    toC('TPML_PCR_SELECTION', marshal(TPML_PCR_SELECTION, [])),
    handle, outPublic, null, null, null,
  );
  const tr = handle[0] as EsysTr;
  try {
    const pub = unmarshal(TPM2B_PUBLIC, takeWire('TPM2B_PUBLIC', outPublic[0]));
    return { handle: tr, public: pub, name: getName(esys, tr) };
  } catch (e) {
    await esys.call('Esys_FlushContext', tr);
    throw e;
  }
}

/** The public area and Name of a loaded object, as the TPM reports them. */
export async function readPublic(esys: EsysContext, handle: EsysTr): Promise<{ public: Sized<TpmtPublic>; name: Uint8Array; qualifiedName: Uint8Array }> {
  const pub = out();
  const name = out();
  const qualified = out();
  await esys.call('Esys_ReadPublic', handle, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, pub, name, qualified);
  return {
    public: unmarshal(TPM2B_PUBLIC, takeWire('TPM2B_PUBLIC', pub[0])),
    name: takeWire('TPM2B_NAME', name[0]).subarray(2),
    qualifiedName: takeWire('TPM2B_NAME', qualified[0]).subarray(2),
  };
}

function getName(esys: EsysContext, handle: EsysTr): Uint8Array {
  const name = out();
  esys.callLocal('Esys_TR_GetName', handle, name);
  return takeWire('TPM2B_NAME', name[0]).subarray(2);
}
