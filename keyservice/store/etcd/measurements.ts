import { randomBytes } from 'node:crypto';
import type { Namespace, Watcher } from 'etcd3';
import type { SignedMeasurementsBytes } from '../../../attestation/policy/load-reference.js';
import type { MeasurementsChannel } from '../store.js';
import { guard } from './client.js';

/**
 * The signed measurements file in force for all replicas: `measurements/current` =
 * {file (base64), sig, from}. A replica that loads a new file (its own file changed and
 * verified) publishes it; every replica watches the key and loads what another published,
 * after checking the signature with its own public key (etcd is not trusted for policy: a
 * writer to etcd without the signing key changes nothing). A watch event reaches every replica
 * within milliseconds; a replica that was partitioned catches up when its watch reconnects.
 */
const KEY = 'measurements/current';

export class EtcdMeasurementsChannel implements MeasurementsChannel {
  /** Tells this replica's publications apart from the others'. */
  private readonly self = randomBytes(8).toString('hex');
  private watcher: Watcher | undefined;

  constructor(private readonly ns: Namespace) {}

  async publish(m: SignedMeasurementsBytes): Promise<void> {
    await guard('publish the measurements', () => this.ns.put(KEY).value(JSON.stringify({ file: m.bytes.toString('base64'), sig: m.sig, from: this.self })).exec());
  }

  async current(): Promise<SignedMeasurementsBytes | undefined> {
    const v = await guard('read the measurements', () => this.ns.get(KEY).buffer());
    return v ? decode(v) : undefined;
  }

  async watch(onOther: (m: SignedMeasurementsBytes) => void): Promise<void> {
    this.watcher = await guard('watch the measurements', () => this.ns.watch().key(KEY).create());
    this.watcher.on('put', (kv) => {
      const j = JSON.parse(kv.value.toString('utf8')) as { from?: string };
      if (j.from !== this.self) onOther(decode(kv.value));
    });
    // A watch that loses its member reconnects by itself (the client's backoff); errors are not fatal.
    this.watcher.on('error', () => undefined);
  }

  async close(): Promise<void> {
    await this.watcher?.cancel().catch(() => undefined);
  }
}

function decode(v: Buffer): SignedMeasurementsBytes {
  const j = JSON.parse(v.toString('utf8')) as { file: string; sig: string };
  return { bytes: Buffer.from(j.file, 'base64'), sig: j.sig };
}
