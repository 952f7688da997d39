import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fail } from '../../lib/errors.js';
import { run, type ExecLogger } from '../../lib/exec.js';
import { readEventLogFile } from '../../measurements/eventlog/read.js';
import { sleep } from '../attest/backoff.js';
import { attest } from '../attest/client.js';
import { Endpoints } from '../attest/failover.js';
import { confirmLock } from '../attest/confirm.js';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import { gatherInventory } from '../attest/inventory.js';
import { DEFAULTS, loadConfig } from '../config/config.js';
import { classifyDisk } from '../disk/classify.js';
import { readBlockInventory } from '../disk/find.js';
import { deviceSize } from '../disk/device-bytes.js';
import { keyOpensDisk } from '../disk/header-copy.js';
import { inspectDisk } from '../disk/inspect.js';
import { prepareStateDisk } from '../disk/prepare.js';
import { newKubeletKey } from '../join/kubelet-csr.js';
import { startRecoveryServer } from '../recovery/server.js';
import { sdNotify } from '../systemd/notify.js';
import type { AgentDeps, StateDiskOps } from './deps.js';
import type { StartRecovery } from './recovery-source.js';
import { fileStatusStore } from './status.js';

export const FIRMWARE_EVENT_LOG = '/sys/kernel/security/tpm0/binary_bios_measurements';

/** The host name as a Kubernetes node name (DNS-1123 label). */
export function defaultNodeName(hostname = os.hostname()): string {
  const h = hostname.toLowerCase().split('.')[0].replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '');
  return h.slice(0, 63).replace(/-+$/, '') || 'node';
}

/** agent/disk with the real tools (cryptsetup, blkid, lsblk, mount). */
export function productionDiskOps(log?: ExecLogger): StateDiskOps {
  return {
    blockDevices: () => readBlockInventory(run, log),
    classify: async (device) => classifyDisk(await inspectDisk(device, run, log)),
    prepare: (o) => prepareStateDisk({ ...o, runner: run, log }),
    keyOpens: async (device, key) => keyOpensDisk({ runner: run, log }, device, await deviceSize(device, run), key),
    async close(mapperName, mountpoint) {
      const m = await run('findmnt', ['-n', '-o', 'SOURCE', '--mountpoint', mountpoint], { okExitCodes: [1], log });
      if (m.exitCode === 0) await run('umount', [mountpoint], { log });
      await run('cryptsetup', ['close', mapperName], { okExitCodes: [4], log });
    },
    async bindMount(source, target) {
      const m = await run('findmnt', ['-n', '-o', 'TARGET', '--mountpoint', target], { okExitCodes: [1], log });
      if (m.exitCode === 0) {
        // Mounted already: it must be this very directory (same device and inode), not something else.
        const [s, t] = await Promise.all([stat(source), stat(target)]);
        if (s.dev === t.dev && s.ino === t.ino) return 'already';
        fail('DISK_STEP_FAILED', `${target} is already a mount point, but not a bind mount of ${source}`);
      }
      await run('mount', ['--bind', source, target], { log });
      return 'mounted';
    },
  };
}

/** agent/recovery's HTTPS endpoint as a RecoverySource (it starts asynchronously; close() waits for the start). */
export const startRecovery: StartRecovery = (o) => {
  const started = startRecoveryServer({ tpm: o.tpm, diskUuid: o.diskUuid, nodeName: o.nodeName, eventLog: o.eventLog, host: o.host, port: o.port, log: o.log, trust: o.trust, proveKey: o.proveKey });
  return {
    secrets: started.then((s) => s.secrets),
    close: async () => {
      const s = await started.catch(() => undefined);
      await s?.close();
    },
  };
};

export interface ProductionOptions {
  configFile?: string;
  /** `--keyservice URL` (repeatable): replaces keyservice.url of the configuration. */
  keyserviceUrls?: readonly string[];
  /** `--platform`, `--metadata-url`: where the unmeasured configuration layer comes from. */
  platform?: string;
  metadataUrl?: string;
  env?: NodeJS.ProcessEnv;
  /** One JSON record per step: the CLI prints it on stdout (journald, and the console via the unit). */
  log: (record: Record<string, unknown>) => void;
  /** Diagnostics (commands, retries): stderr. */
  debug: (line: string) => void;
  signal?: AbortSignal;
}

/** The real parts: koffi -> ESYS TPM, the key service over pinned TLS, cryptsetup, kubeadm, systemd-notify. */
export function productionDeps(o: ProductionOptions): AgentDeps {
  const env = o.env ?? process.env;
  return {
    loadConfig: () => loadConfig({ file: o.configFile, credentialsDirectory: env.CREDENTIALS_DIRECTORY, keyserviceUrls: o.keyserviceUrls, platform: o.platform, metadataUrl: o.metadataUrl }),
    bootId: async () => (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim(),
    openStatus: fileStatusStore,
    fallbackStatus: () => (existsSync(path.dirname(DEFAULTS.statusFile)) ? fileStatusStore(DEFAULTS.statusFile) : undefined),
    inventory: gatherInventory,
    openTpm: (tcti) => EngineAttestationTpm.open(tcti, o.debug),
    keyService: (config) => {
      // One set of endpoints per client: the confirm round starts at the replica that released the key.
      const endpoint = new Endpoints(config.keyservice.urls.map((url) => ({ url, fingerprint: config.keyservice.fingerprint })));
      return {
        attestOnce: (tpm, req) => attest(tpm, { endpoint, ...req, retry: { attempts: 1 }, log: o.debug }),
        confirmLock: (tpm, session) => confirmLock(tpm, endpoint, session, { retry: { baseMs: config.retry.initialMs, capMs: config.retry.maxMs, signal: o.signal }, log: o.debug }),
      };
    },
    startRecovery,
    disk: productionDiskOps(o.debug),
    exec: run,
    eventLog: async () => (existsSync(FIRMWARE_EVENT_LOG) ? readEventLogFile(FIRMWARE_EVENT_LOG) : undefined),
    kubeletKey: newKubeletKey,
    hostname: () => defaultNodeName(),
    clock: { now: () => new Date(), sleep },
    random: Math.random,
    log: o.log,
    debug: o.debug,
    notify: async (msg) => {
      await sdNotify(msg, run, env, o.debug);
    },
    signal: o.signal,
  };
}
