import { SextantError } from '../../lib/errors.js';
import type { BindingsAndAudit } from '../store/store.js';

/**
 * An admin's rebind (`sextant keyservice disk rebind`), the same on every store: read the
 * current binding, append `decision: "disk-rebind"` (diskUuid, from, to, revision, reason) to
 * the store's audit log and wait until it is durable, then make the change as a
 * compare-and-set on the revision read; if the change fails, a `refuse` record with its code
 * follows. No binding changes without its record, as no key leaves without one.
 */

export interface RebindOutcome {
  diskUuid: string;
  from: string | null;
  to: string | null;
  revision: number;
}

export async function rebindAudited(store: Pick<BindingsAndAudit, 'bindings' | 'audit'>, disk: string, to: string | null, reason?: string): Promise<RebindOutcome> {
  const cur = await store.bindings.get(disk);
  const from = cur?.ekPublicSha256 ?? null;
  const revision = (cur?.revision ?? 0) + 1;
  const change = { diskUuid: disk, from, to, revision, ...(reason !== undefined && { reason }) };
  await store.audit.append({ decision: 'disk-rebind', ...change });
  try {
    await store.bindings.rebind(disk, revision - 1, to, { cause: to === null ? 'admin-unbind' : 'admin-rebind', reason });
  } catch (e) {
    await store.audit.append({ decision: 'refuse', stage: 'disk-rebind', code: e instanceof SextantError ? e.code : 'INTERNAL', ...change });
    throw e;
  }
  return { diskUuid: disk, from, to, revision };
}
