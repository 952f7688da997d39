import { randomBytes } from 'node:crypto';
import type { Namespace, Watcher } from 'etcd3';
import type { SavedRollout } from '../../reference-store.js';
import { parseSavedRollout } from '../../admin/protocol.js';
import type { MeasurementsChannel } from '../store.js';
import { guard } from './client.js';

/**
 * The measurement sets in force for all replicas (docs/rollout.md): `measurements/rollout` =
 * {rollout: the sets with their states and the high-water mark, from}. A replica that changes
 * them (a file reload, an admin load or retire) publishes before the change is in force; every
 * replica watches the key and adopts what another published, after checking each set's
 * signature with its own public key (etcd is not trusted for policy: a writer to etcd without
 * the signing key changes nothing, and the high-water mark never goes down). A watch event
 * reaches every replica within milliseconds; a partitioned replica catches up when its watch
 * reconnects.
 */
const KEY = 'measurements/rollout';

export class EtcdMeasurementsChannel implements MeasurementsChannel {
  /** Tells this replica's publications apart from the others'. */
  private readonly self = randomBytes(8).toString('hex');
  private watcher: Watcher | undefined;

  constructor(private readonly ns: Namespace) {}

  async publish(r: SavedRollout): Promise<void> {
    await guard('publish the measurements', () => this.ns.put(KEY).value(JSON.stringify({ rollout: r, from: this.self })).exec());
  }

  async current(): Promise<SavedRollout | undefined> {
    const v = await guard('read the measurements', () => this.ns.get(KEY).buffer());
    return v ? decode(v)?.rollout : undefined;
  }

  async watch(onOther: (r: SavedRollout) => void): Promise<void> {
    this.watcher = await guard('watch the measurements', () => this.ns.watch().key(KEY).create());
    this.watcher.on('put', (kv) => {
      const d = decode(kv.value);
      if (d && d.from !== this.self) onOther(d.rollout);
    });
    // A watch that loses its member reconnects by itself (the client's backoff); errors are not fatal.
    this.watcher.on('error', () => undefined);
  }

  async close(): Promise<void> {
    await this.watcher?.cancel().catch(() => undefined);
  }
}

/** A value that is not a rollout document (a writer without the schema) is ignored. */
function decode(v: Buffer): { rollout: SavedRollout; from?: string } | undefined {
  try {
    const j = JSON.parse(v.toString('utf8')) as { rollout?: unknown; from?: unknown };
    return { rollout: parseSavedRollout(j.rollout), from: typeof j.from === 'string' ? j.from : undefined };
  } catch {
    return undefined;
  }
}
