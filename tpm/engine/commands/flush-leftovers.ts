/**
 * Flushes transient objects left in the TPM by an earlier process that died before its
 * `finally` ran. swtpm (and /dev/tpm0) have no resource manager: without this, three crashed
 * runs exhaust the TPM's object slots (TPM_RC_OBJECT_MEMORY). Under /dev/tpmrm0 the kernel
 * shows each connection only its own handles, so this finds nothing there.
 */
import { TPM_CAP, TPM_HT } from '../../constants.js';
import { ESYS_TR, type EsysContext, type EsysTr, type Out } from '../esys.js';
import { getCapability } from './get-capability.js';

/** TPM handles (not ESYS handles) of the loaded transient objects. */
export async function transientHandles(esys: EsysContext): Promise<number[]> {
  const pages = await getCapability(esys, TPM_CAP.HANDLES, TPM_HT.TRANSIENT << 24);
  return pages.flatMap((p) => (p.capability === TPM_CAP.HANDLES ? p.handles : [])).filter((h) => h >>> 24 === TPM_HT.TRANSIENT);
}

/** TPM handles of the sessions the TPM holds (loaded 0x02xxxxxx, saved 0x03xxxxxx). */
export async function sessionHandles(esys: EsysContext): Promise<number[]> {
  const pages = await getCapability(esys, TPM_CAP.HANDLES, TPM_HT.HMAC_SESSION << 24);
  return pages.flatMap((p) => (p.capability === TPM_CAP.HANDLES ? p.handles : [])).filter((h) => h >>> 24 === TPM_HT.HMAC_SESSION || h >>> 24 === TPM_HT.POLICY_SESSION);
}

/** Flushes every loaded transient object; returns the TPM handles flushed. */
export async function flushLeftovers(esys: EsysContext): Promise<number[]> {
  const handles = await transientHandles(esys);
  for (const h of handles) {
    const tr: Out<number> = [null];
    await esys.call('Esys_TR_FromTPMPublic', h, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, tr);
    await esys.call('Esys_FlushContext', tr[0] as EsysTr);
  }
  return handles;
}
