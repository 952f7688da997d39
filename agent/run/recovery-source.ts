/**
 * Where a disk key can come from besides the key service: an admin who verified the node's
 * attestation sends the recovery secret to the node's recovery endpoint (agent/recovery/).
 * The run step only needs this shape, so the race can be tested with a stub.
 */
export interface RecoveredSecrets {
  /** The state disk's key; whoever receives it zeroizes it once the disk is open. */
  diskKey: Buffer;
  clusterId: string;
}

export interface RecoverySource {
  /** Resolves once an admin delivered the secrets (or rejects if the endpoint failed). */
  secrets: Promise<RecoveredSecrets>;
  /** Stops serving; safe to call more than once. */
  close(): Promise<void>;
}

export interface RecoveryStartOptions {
  port: number;
  log: (line: string) => void;
}

export type StartRecovery = (o: RecoveryStartOptions) => RecoverySource;
