import { toHex, zeroize } from '../../lib/bytes.js';
import { fail, isSextantError, SextantError } from '../../lib/errors.js';
import type { Inventory } from '../../protocol/messages.js';
import { lockedPcr15, lockToCluster } from '../boot/cluster-lock.js';
import type { AgentConfig } from '../config/config.js';
import { selectStateDisk, type BlockDeviceRow } from '../disk/find.js';
import { existsSync } from 'node:fs';
import type { Role } from '../../protocol/messages.js';
import { assertOwnLock, keyServiceRole, pathFromDisk, readPcr15, type Pcr15 } from './decide.js';
import type { AgentDeps, AgentTpm, KubeletKey } from './deps.js';
import { recordJoined, runDiskStep } from './disk-step.js';
import { runJoinStep, writeJoinFile } from './join-step.js';
import { attestUntilAnswered, releaseKey, type KeyRelease } from './key-release.js';
import type { AgentStatus, StatusStore, StepName } from './status.js';

export interface RunResult {
  ok: boolean;
  /** 0 done, 2 bad configuration (systemd does not restart), 1 anything else (systemd restarts). */
  exitCode: 0 | 1 | 2;
  step: StepName;
  path?: AgentStatus['path'];
  code?: string;
  message?: string;
}

/** What lives only in memory for one run: the secrets and the open TPM. */
interface Volatile {
  config?: AgentConfig;
  release?: KeyRelease;
  kubeletKey?: KubeletKey;
  tpm?: AgentTpm;
  blockDevices?: BlockDeviceRow[];
  inventory?: Inventory;
}

function errorFields(e: unknown): { code: string; message: string } {
  if (isSextantError(e)) return { code: e.code, message: e.message };
  return { code: 'INTERNAL', message: (e as Error)?.stack ?? String(e) };
}

/**
 * The boot agent: config, inventory, find-disk, attest, disk, lock, join, done. Each step is
 * idempotent and its completion is persisted (status file, atomically replaced), so a
 * restart in the same boot skips what is done and redoes only what needs the secrets, which
 * never leave memory: attest runs again only while the disk is not open yet, or the node
 * still has to join with the ticket.
 */
export async function runAgent(deps: AgentDeps): Promise<RunResult> {
  const v: Volatile = {};
  let status: AgentStatus | undefined;
  let store: StatusStore | undefined;
  const now = () => deps.clock.now();
  // One write at a time: a retry report of the losing side of the recovery race may still be
  // saving when the step completes.
  let saving: Promise<void> = Promise.resolve();
  const save = (): Promise<void> => {
    const next = saving.then(async () => {
      if (!status || !store) return;
      status.updatedAt = now().toISOString();
      await store.save(status);
    });
    saving = next.catch(() => {});
    return next;
  };

  const step = async <T extends Record<string, unknown>>(name: StepName, body: () => Promise<T>): Promise<T> => {
    const t0 = now();
    const rec = { state: 'running' as const, startedAt: t0.toISOString() };
    if (status) {
      status.step = name;
      status.outcome = 'running';
      status.steps[name] = rec;
      await save();
    }
    await deps.notify({ status: `sextant agent: ${name}` });
    try {
      const detail = await body();
      const ms = now().getTime() - t0.getTime();
      if (status) {
        status.steps[name] = { state: 'done', startedAt: rec.startedAt, finishedAt: now().toISOString(), ms, detail };
        await save();
      }
      deps.log({ step: name, outcome: 'done', ms, ...detail });
      return detail;
    } catch (e) {
      const err = errorFields(e);
      const ms = now().getTime() - t0.getTime();
      if (status) {
        status.steps[name] = { state: 'failed', startedAt: rec.startedAt, finishedAt: now().toISOString(), ms };
        status.outcome = 'failed';
        status.lastError = { step: name, ...err, at: now().toISOString() };
        await save().catch((se) => deps.debug(`could not save the status: ${String(se)}`));
      }
      deps.log({ step: name, outcome: 'failed', ms, ...err });
      await deps.notify({ status: `sextant agent: ${name} failed: ${err.code}` });
      throw e;
    }
  };
  const skip = (name: StepName, reason: string): void => deps.log({ step: name, outcome: 'skipped', reason });
  const isDone = (name: StepName): boolean => status?.steps[name]?.state === 'done';

  let current: StepName = 'config';
  try {
    // ---- config: also decides whether this is a restart within the same boot ----
    const bootId = await deps.bootId();
    const cfgDetail = await step('config', async () => {
      const { config, sources } = await deps.loadConfig();
      v.config = config;
      return { sources, keyservice: config.keyservice.url, role: config.node.role, statusFile: config.statusFile, deviceMapper: config.stateDisk.deviceMapper, recovery: config.recovery.enabled };
    });
    const config = v.config!;
    store = deps.openStatus(config.statusFile);
    const previous = await store.load().catch((e) => {
      deps.debug(`ignoring an unreadable status file: ${String(e)}`);
      return undefined;
    });
    const t = now().toISOString();
    if (previous && previous.bootId === bootId) {
      status = { ...previous, runs: previous.runs + 1, outcome: 'running' };
    } else {
      status = { v: 1, bootId, runs: 1, startedAt: t, updatedAt: t, step: 'config', outcome: 'running', steps: {} };
    }
    status.steps.config = { state: 'done', startedAt: t, finishedAt: t, ms: 0, detail: cfgDetail };
    await save();
    if (status.runs > 1) deps.log({ step: 'config', outcome: 'resumed', run: status.runs, done: Object.entries(status.steps).filter(([, r]) => r?.state === 'done').map(([n]) => n) });

    if (isDone('done')) {
      current = 'done';
      skip('done', 'already done in this boot');
      status.outcome = 'done';
      await save();
      await deps.notify({ ready: true, status: 'sextant agent: done (earlier in this boot)' });
      return { ok: true, exitCode: 0, step: 'done', path: status.path };
    }

    // ---- inventory ----
    current = 'inventory';
    if (isDone('inventory')) skip('inventory', 'done earlier in this boot');
    else {
      await step('inventory', async () => {
        const [inventory, rows] = await Promise.all([deps.inventory(), deps.disk.blockDevices()]);
        v.inventory = inventory;
        v.blockDevices = rows;
        const parts = rows.filter((r) => r.type === 'part').map((r) => ({ path: r.path, size: r.size, partlabel: r.partlabel, parttype: r.parttype, partuuid: r.partuuid, fstype: r.fstype }));
        return { system: { vendor: inventory.vendor, model: inventory.model, serial: inventory.serial }, disks: inventory.disks ?? [], partitions: parts };
      });
    }

    // ---- find-disk: by GPT label/type, then classify (read-only): join, rejoin or refuse ----
    current = 'find-disk';
    if (isDone('find-disk') && status.device && status.diskUuid && status.path) skip('find-disk', `done earlier in this boot: ${status.device}, path ${status.path}`);
    else {
      await step('find-disk', async () => {
        const sd = config.stateDisk;
        let device = sd.device;
        let diskUuid = sd.diskUuid;
        if (device === undefined || diskUuid === undefined) {
          const row = selectStateDisk(v.blockDevices ?? (await deps.disk.blockDevices()), { partLabel: sd.partLabel, partType: sd.partType });
          if (!row.partuuid) fail('DISK_NOT_FOUND', `${row.path} has no GPT partition UUID; the disk key is derived from it`);
          device = row.path;
          diskUuid = row.partuuid;
        }
        const verdict = await deps.disk.classify(device);
        if (verdict.kind === 'refuse') fail(verdict.code, `refusing ${device}: found ${verdict.found}; nothing was written`);
        const { path, found } = pathFromDisk(verdict);
        status!.device = device;
        status!.diskUuid = diskUuid;
        status!.path = path;
        status!.diskFound = found;
        return { device, diskUuid, found, path };
      });
    }
    const device = status.device!;
    const diskUuid = status.diskUuid!;
    const nodeName = config.node.name ?? deps.hostname();

    /** Attests (with backoff, raced against the recovery endpoint when enabled) and returns the secrets. */
    const obtainSecrets = async (role: Role, pcr15: Pcr15): Promise<KeyRelease> => {
      const tpm = v.tpm!;
      v.kubeletKey ??= deps.kubeletKey(nodeName);
      const eventLog = await deps.eventLog();
      const ks = deps.keyService(config);
      const recoveryWanted = config.recovery.enabled && status!.path === 'rejoin';
      if (config.recovery.enabled && !deps.startRecovery) deps.debug('recovery is enabled but this build has no recovery endpoint');
      const release = await releaseKey({
        signal: deps.signal,
        log: deps.debug,
        recovery:
          recoveryWanted && deps.startRecovery
            ? () =>
                deps.startRecovery!({
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
          attestUntilAnswered(() => ks.attestOnce(tpm, { diskUuid, role, nodeName, csr: v.kubeletKey?.csrPem, inventory: v.inventory, eventLog }), {
            initialMs: config.retry.initialMs,
            maxMs: config.retry.maxMs,
            clock: deps.clock,
            random: deps.random,
            signal,
            onRetry: async (e, attempt, delayMs) => {
              const err = errorFields(e);
              status!.outcome = 'waiting';
              status!.lastError = { step: 'attest', ...err, at: now().toISOString() };
              await save();
              deps.log({ step: 'attest', outcome: 'retrying', attempt, delayMs, ...err });
              await deps.notify({ status: `sextant agent: waiting for the key service (attempt ${attempt}, next in ${Math.round(delayMs / 1000)} s)` });
            },
          }),
      });
      try {
        if (pcr15.kind === 'set' && status!.clusterId === undefined) assertOwnLock(pcr15.value, release.clusterId);
      } catch (e) {
        zeroize(release.diskKey);
        throw e;
      }
      if (status!.clusterId !== undefined && status!.clusterId !== release.clusterId) {
        zeroize(release.diskKey);
        fail('CLUSTER_LOCK_MISMATCH', `the key service now names cluster ${release.clusterId}; earlier in this boot it was ${status!.clusterId}`);
      }
      status!.clusterId = release.clusterId;
      status!.keySource = release.source;
      status!.role = role;
      status!.outcome = 'running';
      if (release.joinTicket && status!.path === 'join') await writeJoinFile(config, release.joinTicket, nodeName);
      return release;
    };

    // ---- attest: only while something still needs the secrets ----
    current = 'attest';
    const needSecrets = !isDone('disk') || (status.path === 'join' && !isDone('join'));
    if (!needSecrets) skip('attest', 'the disk is open and the join finished earlier in this boot: no secret needed');
    else {
      await step('attest', async () => {
        v.tpm ??= await deps.openTpm(config.tpm.tcti);
        const tpm = v.tpm;
        const pcr15 = readPcr15(await tpm.readPcrSha256(15));
        const role = keyServiceRole(status!.path!, pcr15, status!.clusterId);
        const release = await obtainSecrets(role, pcr15);
        v.release = release;
        return {
          role,
          pcr15: pcr15.kind === 'zero' ? 'zero' : 'this cluster\'s lock',
          source: release.source,
          attempts: release.attempts,
          clusterId: release.clusterId,
          joinTicket: release.joinTicket !== undefined,
          kubeletCertIssued: release.joinTicket?.kubeletCert !== undefined,
          warnings: release.warnings,
        };
      });
    }

    // ---- disk: format blank / open ours, marker, bind mounts; the key is wiped right after ----
    current = 'disk';
    if (isDone('disk')) skip('disk', 'done earlier in this boot');
    else {
      await step('disk', async () => {
        const release = v.release ?? fail('INTERNAL', 'the disk step needs the key from the attest step');
        try {
          const r = await runDiskStep({ config, disk: deps.disk, clock: deps.clock, device, diskUuid, clusterId: release.clusterId, key: release.diskKey, path: status!.path! });
          zeroize(release.diskKey);
          status!.path = r.path;
          let ticketFetched = false;
          if (r.path === 'join' && !release.joinTicket && !existsSync(config.join.configPath)) {
            // Our disk whose first boot never finished its join: a rejoin gets no join ticket,
            // so ask for a join now, while PCR 15 is still zero (the lock comes next).
            status!.path = 'join';
            const again = await obtainSecrets('join', readPcr15(await v.tpm!.readPcrSha256(15)));
            zeroize(again.diskKey);
            release.joinTicket = again.joinTicket;
            ticketFetched = true;
          }
          return { ...r, diskKeyWiped: true, ticketFetched };
        } finally {
          zeroize(release.diskKey);
        }
      });
    }

    // ---- lock: PCR 15 = H(0^32 || H(clusterID)), once per boot ----
    current = 'lock';
    if (isDone('lock')) skip('lock', 'done earlier in this boot');
    else {
      await step('lock', async () => {
        v.tpm ??= await deps.openTpm(config.tpm.tcti);
        const clusterId = status!.clusterId ?? fail('INTERNAL', 'no cluster ID to lock to');
        const lock = await lockToCluster(v.tpm, clusterId);
        // The confirm round: the key service audits a fresh quote holding PCR 15 = the lock.
        const ks = deps.keyService(config);
        const session = v.release?.confirm;
        let confirm: Record<string, unknown>;
        if (!ks.confirmLock) confirm = { skipped: 'this key service client has no confirm round' };
        else if (!session) confirm = { skipped: v.release ? `no confirm session (key from the ${v.release.source === 'recovery' ? 'recovery endpoint' : 'key service, which opened none'})` : 'no attestation in this run' };
        else {
          const c = await ks.confirmLock(v.tpm, session);
          if (c.pcr15 !== toHex(lockedPcr15(clusterId))) fail('CLUSTER_LOCK_MISMATCH', `the key service confirmed PCR 15 = ${c.pcr15}, not this cluster's lock`);
          confirm = { confirmed: true, attempts: c.attempts };
        }
        return { lock, pcr15: toHex(lockedPcr15(clusterId)), confirm };
      });
    }

    // ---- join: kubeadm join (new node) or start the kubelet (rejoin) ----
    current = 'join';
    if (isDone('join')) skip('join', 'done earlier in this boot');
    else {
      await step('join', async () => {
        const r = await runJoinStep({
          config,
          path: status!.path!,
          nodeName,
          ticket: v.release?.joinTicket,
          kubeletKey: v.kubeletKey,
          exec: deps.exec,
          clock: deps.clock,
          log: deps.debug,
          signal: deps.signal,
        });
        const markerUpdated = r.action === 'kubeadm-join' && config.stateDisk.deviceMapper ? await recordJoined(config.stateDisk.mountpoint, now()) : false;
        return { path: status!.path!, ...r, markerUpdated };
      });
    }

    // ---- done ----
    current = 'done';
    await step('done', async () => {
      await deps.notify({ ready: true, status: `sextant agent: done (${status!.path})` });
      return { path: status!.path!, clusterId: status!.clusterId, runs: status!.runs };
    });
    status.outcome = 'done';
    await save();
    return { ok: true, exitCode: 0, step: 'done', path: status.path };
  } catch (e) {
    const err = errorFields(e);
    if (!status) {
      // No configuration, so no status file path of our own: leave the error where `agent status` looks by default.
      await deps
        .fallbackStatus?.()
        ?.save({ v: 1, bootId: await deps.bootId().catch(() => ''), runs: 1, startedAt: now().toISOString(), updatedAt: now().toISOString(), step: current, outcome: 'failed', steps: {}, lastError: { step: current, ...err, at: now().toISOString() } })
        .catch(() => {});
    }
    const configError = current === 'config' && e instanceof SextantError && e.isInputError;
    return { ok: false, exitCode: configError ? 2 : 1, step: current, path: status?.path, ...err };
  } finally {
    if (v.release) zeroize(v.release.diskKey);
    if (v.kubeletKey) zeroize(v.kubeletKey.keyPem);
    await v.tpm?.dispose().catch((e) => deps.debug(`TPM close: ${String(e)}`));
  }
}
