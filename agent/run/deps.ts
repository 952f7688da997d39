import type { ConfirmSession, Inventory, Role } from '../../protocol/messages.js';
import type { AttestResult } from '../attest/client.js';
import type { AttestationTpm } from '../../attestation/tpm/tpm.js';
import type { HclNv } from '../../attestation/snp/hcl.js';
import type { SnpEvidenceSource } from '../attest/snp-evidence.js';
import type { PcrLockTpm } from '../boot/cluster-lock.js';
import type { AgentConfig } from '../config/config.js';
import type { DiskVerdict } from '../disk/classify.js';
import type { BlockDeviceRow } from '../disk/find.js';
import type { PrepareResult } from '../disk/prepare.js';
import type { Runner } from '../disk/runner.js';
import type { NotifyMessage } from '../systemd/notify.js';
import type { StartRecovery } from './recovery-source.js';
import type { StatusStore } from './status.js';

/** The node's TPM as the agent uses it: attestation and the PCR 15 lock, on one context. */
export interface AgentTpm extends AttestationTpm, PcrLockTpm {
  /** vTPM NV access for azure-sev-snp's HCL report (agent/run/snp-source.ts). */
  hclNv?(): HclNv;
}

export interface AttestOnceRequest {
  diskUuid: string;
  role: Role;
  nodeName: string;
  csr?: string;
  inventory?: Inventory;
  eventLog?: Uint8Array;
  /** An SNP variant's evidence, collected inside the round (it needs the round's nonce and AK). */
  snp?: SnpEvidenceSource;
}

/** The key service as the agent's steps see it. */
export interface KeyServiceClient {
  /** One attestation round trip, no retries: the run loop owns backoff and the recovery race. */
  attestOnce(tpm: AgentTpm, req: AttestOnceRequest): Promise<AttestResult>;
  /**
   * After the lock: a fresh quote in the confirm session the release opened, so the key
   * service's audit log records PCR 15 = the lock (agent/attest/confirm.ts).
   */
  confirmLock?(tpm: AgentTpm, session: ConfirmSession): Promise<{ pcr15: string; attempts: number }>;
}

/** The state disk operations (agent/disk in production; recorded fakes in unit tests). */
export interface StateDiskOps {
  blockDevices(): Promise<BlockDeviceRow[]>;
  /** What is on the device now. Read-only. */
  classify(device: string): Promise<DiskVerdict>;
  /** agent/disk prepareStateDisk: format blank / verify ours, then (open) open, mkfs once, mount. */
  prepare(o: { device: string; key: Uint8Array; open: boolean; mapperName: string; mountpoint: string }): Promise<PrepareResult>;
  /** Whether `key` opens the device's LUKS2 header; strictly read-only (a scratch copy of the header). */
  keyOpens(device: string, key: Uint8Array): Promise<boolean>;
  /** Unmounts and closes the mapping again (a disk refused after opening). */
  close(mapperName: string, mountpoint: string): Promise<void>;
  /** `mount --bind source target` unless target already is that bind mount. */
  bindMount(source: string, target: string): Promise<'mounted' | 'already'>;
}

export interface Clock {
  now(): Date;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** A kubelet client key pair and its CSR (PKCS#10, PEM). The key stays in memory until written to the state disk. */
export interface KubeletKey {
  csrPem: string;
  keyPem: Buffer;
}

/** Everything the steps touch outside the process, injected: production wiring in production.ts. */
export interface AgentDeps {
  loadConfig(): Promise<{ config: AgentConfig; sources: string[] }>;
  bootId(): Promise<string>;
  openStatus(file: string): StatusStore;
  /**
   * Where a configuration error is recorded (no config, so no statusFile of its own): the
   * default status file, when its folder exists (the unit's RuntimeDirectory).
   */
  fallbackStatus?(): StatusStore | undefined;
  inventory(): Promise<Inventory>;
  openTpm(tcti: string): Promise<AgentTpm>;
  keyService(config: AgentConfig): KeyServiceClient;
  /** The recovery endpoint (agent/recovery); undefined where it is not built in. */
  startRecovery?: StartRecovery;
  disk: StateDiskOps;
  /** kubeadm, systemctl. */
  exec: Runner;
  eventLog(): Promise<Uint8Array | undefined>;
  kubeletKey(nodeName: string): KubeletKey;
  hostname(): string;
  clock: Clock;
  random(): number;
  /** One structured record per step (stdout -> journald in production). */
  log(record: Record<string, unknown>): void;
  /** Free-form diagnostics (commands run, retries); never secrets. */
  debug(line: string): void;
  notify(msg: NotifyMessage): Promise<void>;
  signal?: AbortSignal;
}
