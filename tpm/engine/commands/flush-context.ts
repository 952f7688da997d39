/** TPM2_FlushContext (Part 3 §28.4): removes a transient object or session from the TPM. */
import type { EsysContext, EsysTr } from '../esys.js';

export async function flushContext(esys: EsysContext, handle: EsysTr): Promise<void> {
  await esys.call('Esys_FlushContext', handle);
}
