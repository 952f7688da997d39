import type { KeyObject } from 'node:crypto';
import { SextantError, isSextantError } from '../../lib/errors.js';
import { StageError } from '../../attestation/stage.js';
import { ekPublicSha256, type DiskBindingStore } from './store.js';

/**
 * The `checkDiskBinding` stage: the last check before a disk key is derived. It runs only
 * after every other stage passed (a refused node binds nothing), and the binding it makes is
 * durable before it returns, so before the key can leave. The node is told only that the
 * disk belongs to another node and its own EK identity (for the admin's rebind); which node
 * holds the disk goes to the audit record only.
 */
export async function checkDiskBinding(
  store: DiskBindingStore,
  diskUuid: string,
  ekKey: KeyObject,
  nodeName: string,
  facts: Record<string, unknown>,
): Promise<void> {
  const ek = ekPublicSha256(ekKey);
  facts.ekPublicSha256 = ek;
  try {
    const { binding, created } = await store.bindIfAbsent(diskUuid, ek, { nodeName });
    facts.diskBinding = { revision: binding.revision, state: created ? 'bound-now' : binding.ekPublicSha256 === ek ? 'bound-to-this-node' : 'bound-elsewhere' };
    if (binding.ekPublicSha256 !== ek) {
      facts.diskBoundTo = binding.ekPublicSha256;
      throw new SextantError({
        code: 'DISK_BOUND_ELSEWHERE',
        message: `disk ${diskUuid} is bound to another node; if this node should now hold it, an admin rebinds it: sextant keyservice disk rebind --disk ${diskUuid} --to-ek-sha256 ${ek}`,
      });
    }
  } catch (e) {
    if (isSextantError(e)) throw new StageError('checkDiskBinding', e);
    throw e;
  }
}
