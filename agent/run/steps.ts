import { existsSync } from 'node:fs';
import { toHex } from '../../lib/bytes.js';
import { fail, isSextantError } from '../../lib/errors.js';
import type { Inventory, Role } from '../../protocol/messages.js';
import { lockedPcr15, lockToCluster } from '../boot/cluster-lock.js';
import type { AgentConfig } from '../config/config.js';
import { selectStateDisk, type BlockDeviceRow } from '../disk/find.js';
import { assertOwnLock, keyServiceRole, pathFromDisk, readPcr15, type Pcr15 } from './decide.js';
import type { AgentDeps, AgentTpm, KeyServiceClient } from './deps.js';
import { recordJoined, runDiskStep } from './disk-step.js';
import { runJoinStep, writeJoinFile } from './join-step.js';
import { attestUntilAnswered, releaseKey, type KeyRelease } from './key-release.js';
import type { RunSecrets } from './secrets.js';
import { snpSourceFor, type SnpSentDetail } from './snp-source.js';
import type { AgentStatus, BootPath, StepName } from './status.js';

/** A released key's facts, without the key (that is in RunSecrets). */
export type Release = Omit<KeyRelease, 'diskKey'> & { snp?: SnpSentDetail };

/** What the steps of one run share: the persisted status, and what lives only in memory. */
export interface RunContext {
  deps: AgentDeps;
  config: AgentConfig;
  status: AgentStatus;
  secrets: RunSecrets;
  nodeName: string;
  /** Persists `status` (one write at a time). */
  save(): Promise<void>;
  /** The node's TPM, opened on first use and closed when the run ends. */
  tpm(): Promise<AgentTpm>;
  /** One key service client per run: the confirm round starts at the endpoint that released the key. */
  keyService(): KeyServiceClient;
  blockDevices?: BlockDeviceRow[];
  inventory?: Inventory;
  release?: Release;
}

/** One step of the boot agent: `run` happens only when `needed` says the status lacks its result. */
export interface Step {
  name: Exclude<StepName, 'config'>;
  needed(status: AgentStatus): boolean;
  /** Why it is skipped (logged); the default: done earlier in this boot. */
  skipReason?(status: AgentStatus): string;
  /** The step's structured result for the status file and the log (never a secret). */
  run(ctx: RunContext): Promise<Record<string, unknown>>;
}

const isDone = (s: AgentStatus, name: StepName): boolean => s.steps[name]?.state === 'done';
const notDone = (name: StepName) => (s: AgentStatus) => !isDone(s, name);

/** The state disk as find-disk recorded it; a later step without it is a broken step order. */
export function stateDisk(s: AgentStatus): { device: string; diskUuid: string; path: BootPath } {
  if (s.device === undefined || s.diskUuid === undefined || s.path === undefined) fail('INTERNAL', 'no state disk recorded: find-disk has not run');
  return { device: s.device, diskUuid: s.diskUuid, path: s.path };
}

/**
 * The steps after config, in order: inventory, find-disk, attest, disk, lock, join, done.
 * Each one is idempotent; the status file says which are done, so a restart in the same
 * boot skips them. Attest is the exception: its result (the secrets) never leaves memory, so
 * it runs again while something still needs the secrets.
 */
export const STEP_TABLE: readonly Step[] = [
  {
    name: 'inventory',
    needed: notDone('inventory'),
    async run(ctx) {
      const [inventory, rows] = await Promise.all([ctx.deps.inventory(), ctx.deps.disk.blockDevices()]);
      ctx.inventory = inventory;
      ctx.blockDevices = rows;
      const parts = rows.filter((r) => r.type === 'part').map((r) => ({ path: r.path, size: r.size, partlabel: r.partlabel, parttype: r.parttype, partuuid: r.partuuid, fstype: r.fstype }));
      return { system: { vendor: inventory.vendor, model: inventory.model, serial: inventory.serial }, disks: inventory.disks ?? [], partitions: parts };
    },
  },
  {
    // By GPT label/type, then classify (read-only): join, rejoin or refuse.
    name: 'find-disk',
    needed: (s) => !(isDone(s, 'find-disk') && s.device && s.diskUuid && s.path),
    skipReason: (s) => `done earlier in this boot: ${s.device}, path ${s.path}`,
    async run(ctx) {
      const sd = ctx.config.stateDisk;
      let device = sd.device;
      let diskUuid = sd.diskUuid;
      if (device === undefined || diskUuid === undefined) {
        const row = selectStateDisk(ctx.blockDevices ?? (await ctx.deps.disk.blockDevices()), { partLabel: sd.partLabel, partType: sd.partType });
        if (!row.partuuid) fail('DISK_NOT_FOUND', `${row.path} has no GPT partition UUID; the disk key is derived from it`);
        device = row.path;
        diskUuid = row.partuuid;
      }
      const verdict = await ctx.deps.disk.classify(device);
      if (verdict.kind === 'refuse') fail(verdict.code, `refusing ${device}: found ${verdict.found}; nothing was written`);
      const { path, found } = pathFromDisk(verdict);
      Object.assign(ctx.status, { device, diskUuid, path, diskFound: found });
      return { device, diskUuid, found, path };
    },
  },
  {
    name: 'attest',
    needed: (s) => !isDone(s, 'disk') || (s.path === 'join' && !isDone(s, 'join')),
    skipReason: () => 'the disk is open and the join finished earlier in this boot: no secret needed',
    async run(ctx) {
      const tpm = await ctx.tpm();
      const pcr15 = readPcr15(await tpm.readPcrSha256(15));
      const role = keyServiceRole(stateDisk(ctx.status).path, pcr15, ctx.status.clusterId);
      const release = await obtainSecrets(ctx, role, pcr15);
      ctx.release = release;
      return {
        role,
        pcr15: pcr15.kind === 'zero' ? 'zero' : "this cluster's lock",
        source: release.source,
        keyservice: release.endpoint,
        attempts: release.attempts,
        clusterId: release.clusterId,
        joinTicket: release.joinTicket !== undefined,
        kubeletCertIssued: release.joinTicket?.kubeletCert !== undefined,
        warnings: release.warnings,
        ...(release.snp && { snp: release.snp }),
      };
    },
  },
  {
    // Format blank / open ours, marker, bind mounts; the key is wiped right after.
    name: 'disk',
    needed: notDone('disk'),
    async run(ctx) {
      const { device, diskUuid, path } = stateDisk(ctx.status);
      const release = ctx.release ?? fail('INTERNAL', 'the disk step needs the key from the attest step');
      try {
        const r = await runDiskStep({ config: ctx.config, disk: ctx.deps.disk, clock: ctx.deps.clock, device, diskUuid, clusterId: release.clusterId, key: ctx.secrets.diskKey(), path });
        ctx.secrets.wipeDiskKey();
        ctx.status.path = r.path;
        let ticketFetched = false;
        if (r.path === 'join' && !release.joinTicket && !existsSync(ctx.config.join.configPath)) {
          // Our disk whose first boot never finished its join: a rejoin gets no join ticket,
          // so ask for a join now, while PCR 15 is still zero (the lock comes next).
          const again = await obtainSecrets(ctx, 'join', readPcr15(await (await ctx.tpm()).readPcrSha256(15)));
          ctx.secrets.wipeDiskKey();
          release.joinTicket = again.joinTicket;
          ticketFetched = true;
        }
        return { ...r, diskKeyWiped: true, ticketFetched };
      } finally {
        ctx.secrets.wipeDiskKey();
      }
    },
  },
  {
    // PCR 15 = H(0^32 || H(clusterID)), once per boot; then the confirm round.
    name: 'lock',
    needed: notDone('lock'),
    async run(ctx) {
      const tpm = await ctx.tpm();
      const clusterId = ctx.status.clusterId ?? fail('INTERNAL', 'no cluster ID to lock to');
      const lock = await lockToCluster(tpm, clusterId);
      return { lock, pcr15: toHex(lockedPcr15(clusterId)), confirm: await confirmLock(ctx, tpm, clusterId) };
    },
  },
  {
    // kubeadm join (new node) or start the kubelet (rejoin).
    name: 'join',
    needed: notDone('join'),
    async run(ctx) {
      const path = stateDisk(ctx.status).path;
      const { config, deps } = ctx;
      const r = await runJoinStep({ config, path, nodeName: ctx.nodeName, ticket: ctx.release?.joinTicket, kubeletKey: ctx.secrets.kubeletKeyIfMade(), exec: deps.exec, clock: deps.clock, log: deps.debug, signal: deps.signal });
      const markerUpdated = r.action === 'kubeadm-join' && config.stateDisk.deviceMapper ? await recordJoined(config.stateDisk.mountpoint, deps.clock.now()) : false;
      return { path, ...r, markerUpdated };
    },
  },
  {
    name: 'done',
    needed: () => true,
    async run(ctx) {
      const { path } = stateDisk(ctx.status);
      await ctx.deps.notify({ ready: true, status: `sextant agent: done (${path})` });
      return { path, clusterId: ctx.status.clusterId, runs: ctx.status.runs };
    },
  },
];

/** The confirm round: the key service audits a fresh quote holding PCR 15 = the lock. */
async function confirmLock(ctx: RunContext, tpm: AgentTpm, clusterId: string): Promise<Record<string, unknown>> {
  const ks = ctx.keyService();
  const session = ctx.release?.confirm;
  if (!ks.confirmLock) return { skipped: 'this key service client has no confirm round' };
  if (!session) return { skipped: ctx.release ? `no confirm session (key from the ${ctx.release.source === 'recovery' ? 'recovery endpoint' : 'key service, which opened none'})` : 'no attestation in this run' };
  const c = await ks.confirmLock(tpm, session);
  if (c.pcr15 !== toHex(lockedPcr15(clusterId))) fail('CLUSTER_LOCK_MISMATCH', `the key service confirmed PCR 15 = ${c.pcr15}, not this cluster's lock`);
  return { confirmed: true, attempts: c.attempts };
}

/**
 * Attests (with backoff, raced against the recovery endpoint when enabled); the disk key goes
 * into the run's secrets the moment it arrives, so a refusal below still gets it wiped.
 */
async function obtainSecrets(ctx: RunContext, role: Role, pcr15: Pcr15): Promise<Release> {
  const { deps, config, status, nodeName } = ctx;
  const { device, diskUuid, path } = stateDisk(status);
  const tpm = await ctx.tpm();
  const kubeletKey = ctx.secrets.kubeletKey(() => deps.kubeletKey(nodeName));
  const eventLog = await deps.eventLog();
  const ks = ctx.keyService();
  // An SNP variant: its evidence source, checked before any round (a node that cannot give it stops here).
  const snp = await snpSourceFor(config.attestation, tpm.hclNv?.());
  const recoveryWanted = config.recovery.enabled && path === 'rejoin';
  if (config.recovery.enabled && !deps.startRecovery) deps.debug('recovery is enabled but this build has no recovery endpoint');
  const startRecovery = recoveryWanted ? deps.startRecovery : undefined;
  const { diskKey, ...release } = await releaseKey({
    signal: deps.signal,
    log: deps.debug,
    recovery: startRecovery
      ? () =>
          startRecovery({
            tpm,
            diskUuid,
            nodeName,
            eventLog,
            host: config.recovery.address,
            port: config.recovery.port,
            log: deps.debug,
            trust: { certificates: config.recovery.keyserviceCertificate ? [config.recovery.keyserviceCertificate] : [], publicKeys: config.recovery.adminKeys },
            // The key must open this disk before the endpoint accepts it: nothing of a
            // forged answer reaches the status file or the disk step.
            proveKey: (key) => deps.disk.keyOpens(device, key),
          })
      : undefined,
    keyservice: (signal) =>
      attestUntilAnswered(() => ks.attestOnce(tpm, { diskUuid, role, nodeName, csr: kubeletKey.csrPem, inventory: ctx.inventory, eventLog, snp: snp?.source }), {
        initialMs: config.retry.initialMs,
        maxMs: config.retry.maxMs,
        clock: deps.clock,
        random: deps.random,
        signal,
        onRetry: async (e, attempt, delayMs) => {
          const err = errorFields(e);
          status.outcome = 'waiting';
          status.lastError = { step: 'attest', ...err, at: deps.clock.now().toISOString() };
          await ctx.save();
          deps.log({ step: 'attest', outcome: 'retrying', attempt, delayMs, ...err });
          await deps.notify({ status: `sextant agent: waiting for the key service (attempt ${attempt}, next in ${Math.round(delayMs / 1000)} s)` });
        },
      }),
  });
  ctx.secrets.holdDiskKey(diskKey);
  if (pcr15.kind === 'set' && status.clusterId === undefined) assertOwnLock(pcr15.value, release.clusterId);
  if (status.clusterId !== undefined && status.clusterId !== release.clusterId) {
    fail('CLUSTER_LOCK_MISMATCH', `the key service now names cluster ${release.clusterId}; earlier in this boot it was ${status.clusterId}`);
  }
  Object.assign(status, { clusterId: release.clusterId, keySource: release.source, keyservice: release.endpoint, role, outcome: 'running' });
  if (release.joinTicket && path === 'join') await writeJoinFile(config, release.joinTicket, nodeName);
  return { ...release, ...(snp && release.source === 'keyservice' && { snp: snp.detail }) };
}

export function errorFields(e: unknown): { code: string; message: string } {
  if (isSextantError(e)) return { code: e.code, message: e.message };
  return { code: 'INTERNAL', message: (e as Error)?.stack ?? String(e) };
}
