import type { AgentTpm } from './deps.js';
import type { RecoveredSecrets, RecoveryTrust } from '../recovery/server.js';

export type { RecoveredSecrets, RecoveryTrust };

/**
 * Where a disk key can come from besides the key service: an admin who verified the node's
 * attestation sends the recovery secret to the node's recovery endpoint (agent/recovery/).
 * The run step only needs this shape, so the race can be tested with a stub.
 */
export interface RecoverySource {
  /** Resolves once an admin delivered the secrets (or rejects if the endpoint failed). */
  secrets: Promise<RecoveredSecrets>;
  /** Stops serving; safe to call more than once. */
  close(): Promise<void>;
}

export interface RecoveryStartOptions {
  tpm: AgentTpm;
  diskUuid: string;
  nodeName: string;
  eventLog?: Uint8Array;
  host: string;
  port: number;
  log: (line: string) => void;
  /** Who may recover this node: from the measured configuration only (agent/config). */
  trust: RecoveryTrust;
  /** True when the key opens the state disk (a read-only test): an answer is accepted only then. */
  proveKey: (diskKey: Buffer) => Promise<boolean>;
}

export type StartRecovery = (o: RecoveryStartOptions) => RecoverySource;
