import { zeroize } from '../../lib/bytes.js';
import { fail } from '../../lib/errors.js';
import type { KubeletKey } from './deps.js';

/**
 * The secret bytes of one agent run, and the one place that wipes them. The disk key is held
 * from the moment it arrives until the disk step has used it; the kubelet client key until
 * the run ends (the join step writes it onto the state disk). Whatever path a run takes
 * (done, failed, thrown), `wipeAll()` in its `finally` leaves nothing behind in these
 * buffers. What Node cannot wipe (strings, KeyObjects, copies inside OpenSSL or V8) is listed
 * in docs/secrets-in-memory.md.
 */
export class RunSecrets {
  #diskKey: Buffer | undefined;
  #kubeletKey: KubeletKey | undefined;

  /** Holds a newly released disk key; an earlier one is wiped first (one key at a time). */
  holdDiskKey(key: Buffer): void {
    if (this.#diskKey !== key) this.wipeDiskKey();
    this.#diskKey = key;
  }

  /** The held disk key; INTERNAL when the step order is broken (no key was released, or it is wiped). */
  diskKey(): Buffer {
    return this.#diskKey ?? fail('INTERNAL', 'the disk step needs the key from the attest step');
  }

  wipeDiskKey(): void {
    zeroize(this.#diskKey);
    this.#diskKey = undefined;
  }

  /** The run's kubelet key pair, made once (its CSR goes with every attestation of the run). */
  kubeletKey(make: () => KubeletKey): KubeletKey {
    this.#kubeletKey ??= make();
    return this.#kubeletKey;
  }

  /** The kubelet key if one was made in this run (a rejoin after a restart makes none). */
  kubeletKeyIfMade(): KubeletKey | undefined {
    return this.#kubeletKey;
  }

  wipeAll(): void {
    this.wipeDiskKey();
    zeroize(this.#kubeletKey?.keyPem);
    this.#kubeletKey = undefined;
  }
}
