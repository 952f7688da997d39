import type { SextantError } from '../../lib/errors.js';
import type { OverflowPolicy } from '../../lib/expiring-map.js';
import type { SavedRollout } from '../reference-store.js';
import type { AuditLog } from '../audit/log.js';
import type { DiskBindingStore } from '../binding/store.js';

/**
 * The key service's shared state, behind one interface so that N replicas can share it
 * (docs/ha.md). Two implementations:
 *
 *   local  the state directory and process memory (store/local.ts): one process, today's default
 *   etcd   a real etcd v3 cluster (store/etcd/): any replica serves any round
 *
 * What lives here: half-done sessions (attestation round 1 -> 2, release -> confirm),
 * single-use nonces, disk-to-node bindings, the audit log, and (etcd) the signed measurements
 * file in force. What never lives here: the master secret and salt (state dir / a Secret).
 */

/** Single-use nonces. Sync or async: the local store answers at once, etcd after a transaction. */
export interface NonceBook {
  readonly ttlMs: number;
  /** A fresh nonce, remembered for its TTL; RATE_LIMITED when the book is full, STORE_UNAVAILABLE without quorum. */
  issue(): Buffer | Promise<Buffer>;
  /**
   * Uses the nonce up now and says why it is not acceptable (NONCE_UNKNOWN / _REPLAYED /
   * _EXPIRED), or undefined. Of two concurrent takes of one nonce exactly one gets undefined.
   * Rejects (STORE_UNAVAILABLE) only when the store cannot answer: then nothing is released.
   */
  take(nonce: Uint8Array): SextantError | undefined | Promise<SextantError | undefined>;
}

/** How a session is written to a shared store (the local store keeps the object itself). */
export interface SessionCodec<T> {
  encode(v: T): Buffer;
  decode(b: Buffer): T;
}

export interface SessionBookSpec<T> {
  /** Namespace (`attest`, `confirm`): sessions of two kinds never meet. */
  name: string;
  ttlMs: number;
  maxEntries: number;
  overflow: OverflowPolicy;
  codec: SessionCodec<T>;
  /** The refusal when full under `refuse` (the caller's own code and message). */
  full: () => SextantError;
}

/** Half-done sessions under random 128-bit ids (32 hex digits, the protocol's session id). */
export interface SessionBook<T> {
  open(value: T): Promise<{ id: string; expiresAt: number }>;
  /** The live session, removed: of two concurrent takes exactly one gets it. */
  take(id: string): Promise<T | undefined>;
  /** The live session, kept until its TTL. */
  get(id: string): Promise<T | undefined>;
}

/** What the verifier needs of an audit log: append (durable when it resolves), settle, close. */
export type AuditSink = Pick<AuditLog, 'append' | 'settled' | 'close'>;

/** The measurement sets all replicas enforce (etcd only: one process needs no channel; docs/rollout.md). */
export interface MeasurementsChannel {
  publish(r: SavedRollout): Promise<void>;
  current(): Promise<SavedRollout | undefined>;
  /** Calls back with every state another replica publishes (not yet verified: the caller checks each signature). */
  watch(onOther: (r: SavedRollout) => void): Promise<void>;
}

/**
 * The part of a store the admin commands use (`keyservice disk list | rebind`): the bindings
 * and the audit log, no sessions, nonces or secrets. Every store is one.
 */
export interface BindingsAndAudit {
  readonly kind: 'local' | 'etcd';
  readonly bindings: DiskBindingStore;
  readonly audit: AuditSink;
  /** Where the audit log lives, for the start line (`STATE/audit.log`, `etcd:<prefix>audit/`). */
  readonly auditLocation: string;
  close(): Promise<void>;
}

export interface KeyServiceStore extends BindingsAndAudit {
  readonly nonces: NonceBook;
  sessions<T>(spec: SessionBookSpec<T>): SessionBook<T>;
  readonly measurements?: MeasurementsChannel;
}
