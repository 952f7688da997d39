import { bool, str, strs, type CommandSpec } from '../command.js';
import { fail } from '../../lib/errors.js';
import { requireStr } from '../args.js';
import type { Role } from '../../protocol/messages.js';
import { zeroize } from '../../lib/bytes.js';
import { readKey } from '../../agent/disk/key-source.js';
import { prepareStateDisk, type PrepareResult } from '../../agent/disk/prepare.js';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { attest, describeResult } from '../../agent/attest/client.js';
import { Endpoints } from '../../agent/attest/failover.js';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import { confirmLock } from '../../agent/attest/confirm.js';
import { lockToCluster } from '../../agent/boot/cluster-lock.js';
import { loadReferenceSet } from '../../attestation/policy/load-reference.js';
import { loadCaCertificates } from '../../attestation/tpm/ek-chain.js';
import type { ServiceVerifierOptions } from '../../attestation/tpm/verify-service.js';
import { gatherInventory } from '../../agent/attest/inventory.js';
import { readEventLogFile } from '../../measurements/eventlog/index.js';
import { resolveTcti } from '../../tpm/engine/tcti.js';
import { defaultNodeName, FIRMWARE_EVENT_LOG, productionDeps } from '../../agent/run/production.js';
import { runAgent, type RunResult } from '../../agent/run/machine.js';
import { readStatusFile, renderStatus, type AgentStatus } from '../../agent/run/status.js';
import { DEFAULT_CONFIG_PATH, DEFAULTS } from '../../agent/config/config.js';

const ROLES: readonly Role[] = ['join', 'rejoin'];

// ---- state disk, run, status (engineer agentdisk) ----

const diskPrepare: CommandSpec<PrepareResult> = {
  path: ['agent', 'disk', 'prepare'],
  summary: 'format a blank state disk, or verify sextant\'s LUKS2 header and key; never overwrites data',
  description: `Blank device (no signature, zeros where the header goes): LUKS2 format + sextant token.
A LUKS2 header sextant made: checked against the allow-list, then the key is tested.
Anything else (a filesystem, a partition table, a foreign or downgraded LUKS header) or
a wrong key: exit 1 with DISK_FOREIGN_DATA / DISK_HEADER_REJECTED / DISK_WRONG_KEY and the
device untouched. Without --no-open it then opens the mapping, creates ext4 once, mounts.`,
  options: {
    device: { type: 'string', valueName: 'PATH', description: 'the state disk (block device or image file)', required: true },
    'key-file': { type: 'string', valueName: 'FILE|-', description: 'the disk key; - reads it from stdin', required: true },
    'no-open': { type: 'boolean', description: 'stop before device-mapper steps (open, mkfs, mount)' },
    mapper: { type: 'string', valueName: 'NAME', description: 'device-mapper name', default: 'sextant-state' },
    mountpoint: { type: 'string', valueName: 'DIR', description: 'where to mount', default: '/var/lib/sextant-state' },
  },
  async run(ctx) {
    const device = requireStr(ctx.values, 'device');
    const keySource = requireStr(ctx.values, 'key-file');
    const key = await readKey(keySource, process.stdin);
    try {
      return await prepareStateDisk({
        device,
        key,
        open: !bool(ctx.values, 'no-open'),
        mapperName: str(ctx.values, 'mapper'),
        mountpoint: str(ctx.values, 'mountpoint'),
        log: ctx.log,
      });
    } finally {
      zeroize(key);
    }
  },
  render(r) {
    return [`${r.device}: found ${r.found}; ${r.steps.join(', ')}`, r.luksUuid && `LUKS UUID ${r.luksUuid}`, r.mountpoint && `mounted at ${r.mountpoint}`]
      .filter(Boolean)
      .join('\n');
  },
};

export const agentDiskCommands: CommandSpec<any>[] = [diskPrepare];

// ---- end state disk section ----

// ---- attestation (engineer keyservice) ----

/** Mutual attestation: what the agent trusts in the key service's own quote (attestation/tpm/verify-service.ts). */
async function keyserviceVerifier(v: Record<string, unknown>): Promise<ServiceVerifierOptions | undefined> {
  const file = str(v as never, 'keyservice-measurements');
  if (!file) return undefined;
  const key = str(v as never, 'keyservice-measurements-key') ?? fail('USAGE', '--keyservice-measurements needs --keyservice-measurements-key');
  const cas = strs(v as never, 'keyservice-ek-ca');
  if (!cas?.length) fail('USAGE', '--keyservice-measurements needs --keyservice-ek-ca (the CA of the key service TPM\'s EK certificate)');
  const references = [await loadReferenceSet(file, file + '.sig', await readFile(key, 'utf8'))];
  const ekCas = loadCaCertificates(await Promise.all(cas.map((f) => readFile(f, 'utf8'))));
  return { ekCas, references };
}

const attestCmd: CommandSpec<Record<string, unknown>> = {
  path: ['agent', 'attest'],
  summary: 'attest this node to the key service and print what it released (SHA-256 of secrets only)',
  description: `Runs the attestation protocol (see docs/protocol.md): nonce, EK certificate + AK,
credential activation, quote of SHA-256 PCRs 0-15 bound to the nonce and a one-time key,
sealed answer. Sends the firmware event log when the host has one (${FIRMWARE_EVENT_LOG}).
Retries unreachable/busy services with exponential backoff and jitter; a refusal is final
and exits 1 with the service's code. With --lock it then binds this boot to the cluster
(TPM2_PCR_Event(15, clusterId) unless PCR 15 already holds the lock) and proves it to the
key service with a fresh quote (the confirm round, audited as lock-confirmed).
With --keyservice-measurements (+ -key, --keyservice-ek-ca) it first checks the key
service's own TPM quote and refuses (KEYSERVICE_* codes) before sending any evidence.`,
  options: {
    tcti: { type: 'string', valueName: 'TCTI', description: 'TPM (default $SEXTANT_TCTI or device:/dev/tpmrm0)' },
    keyservice: { type: 'string', multiple: true, valueName: 'URL', description: 'https://IP:PORT of the key service; repeat for replicas (failover in the order given)', required: true },
    'ca-fingerprint': { type: 'string', valueName: 'sha256:HEX', description: 'pinned key service certificate fingerprint', required: true },
    'disk-uuid': { type: 'string', valueName: 'UUID', description: 'the state disk whose key to fetch', required: true },
    role: { type: 'string', choices: ROLES, description: 'join a cluster, or rejoin the one PCR 15 names', default: 'join' },
    'node-name': { type: 'string', valueName: 'NAME', description: 'Kubernetes node name (default: host name)' },
    csr: { type: 'string', valueName: 'FILE', description: 'kubelet client CSR (PEM) to have signed' },
    'event-log': { type: 'string', valueName: 'FILE', description: `event log to send (default ${FIRMWARE_EVENT_LOG} when present)` },
    'no-event-log': { type: 'boolean', description: 'send no event log' },
    attempts: { type: 'string', valueName: 'N', description: 'attempts before giving up (default 5)' },
    lock: { type: 'boolean', description: 'then extend PCR 15 with the cluster ID and confirm the lock to the key service' },
    'keyservice-measurements': { type: 'string', valueName: 'FILE', description: "signed expected PCRs of the key service's machine: check its own quote first (mutual attestation)" },
    'keyservice-measurements-key': { type: 'string', valueName: 'PUB.pem', description: 'public key that file is signed with (signature: FILE.sig)' },
    'keyservice-ek-ca': { type: 'string', multiple: true, valueName: 'CA.pem', description: "trusted CA of the key service TPM's EK certificate" },
  },
  async run(ctx) {
    const v = ctx.values;
    const role = (str(v, 'role') ?? 'join') as Role;
    const fingerprint = requireStr(v, 'ca-fingerprint');
    const endpoints = new Endpoints(strs(v, 'keyservice').map((url) => ({ url, fingerprint })));
    const diskUuid = requireStr(v, 'disk-uuid').toLowerCase();
    let eventLog: Buffer | undefined;
    if (!bool(v, 'no-event-log')) {
      const file = str(v, 'event-log') ?? (existsSync(FIRMWARE_EVENT_LOG) ? FIRMWARE_EVENT_LOG : undefined);
      if (file) eventLog = await readEventLogFile(file);
    }
    const csrFile = str(v, 'csr');
    const verifyService = await keyserviceVerifier(v);
    const tpm = await EngineAttestationTpm.open(resolveTcti(str(v, 'tcti')), ctx.log);
    try {
      const r = await attest(tpm, {
        endpoint: endpoints,
        diskUuid,
        role,
        nodeName: str(v, 'node-name') ?? defaultNodeName(),
        csr: csrFile ? await readFile(csrFile, 'utf8') : undefined,
        eventLog,
        inventory: await gatherInventory(),
        verifyService,
        retry: { attempts: Number(str(v, 'attempts') ?? 5), signal: ctx.signal },
        log: ctx.log,
      });
      try {
        if (!bool(v, 'lock')) return { ok: true, ...describeResult(r) };
        const lock = await lockToCluster(tpm, r.clusterId);
        const c = await confirmLock(tpm, endpoints, r.confirm, { retry: { attempts: Number(str(v, 'attempts') ?? 5), signal: ctx.signal }, log: ctx.log });
        return { ok: true, ...describeResult(r), lock, lockConfirmed: true, pcr15: c.pcr15 };
      } finally {
        zeroize(r.diskKey);
      }
    } finally {
      await tpm.dispose();
    }
  },
  render: (r) =>
    [`attested at ${String(r.keyservice)}: disk key sha256 ${String(r.diskKeySha256)}`, `cluster ${String(r.clusterId)}`, ...(r.lockConfirmed ? [`PCR 15 lock ${String(r.lock)} and confirmed: ${String(r.pcr15)}`] : []), ...((r.warnings as string[] | undefined) ?? []).map((w) => `warning: ${w}`)].join('\n'),
};

export const agentAttestCommands: CommandSpec<any>[] = [attestCmd];

// ---- end attestation section ----

// ---- boot agent: run, status (engineer agentrun) ----

const runCmd: CommandSpec<RunResult> = {
  path: ['agent', 'run'],
  summary: 'the boot agent: attest, open (or format a blank) state disk, lock PCR 15, join; resumable',
  description: `Steps: config, inventory, find-disk, attest, disk, lock, join, done. Prints one JSON
record per step on stdout (journald; the unit copies it to the console) and reports each
step to systemd (STATUS=, READY=1 when done). Progress is kept in the status file
(${DEFAULTS.statusFile}), so a restart in the same boot resumes where it stopped.
Join or rejoin is decided by the state disk: blank -> join (format, kubeadm join);
sextant's LUKS2 header -> rejoin (open, start the kubelet); anything else -> refused, untouched.
Configuration: defaults <- --config FILE (default ${DEFAULT_CONFIG_PATH}) <- the systemd
credential sextant.agent.json ($CREDENTIALS_DIRECTORY) <- sextant.* kernel command-line keys.
Exit 0 done, 2 bad configuration, 1 any other failure (systemd restarts the unit).`,
  options: {
    config: { type: 'string', valueName: 'FILE', description: `agent configuration (default ${DEFAULT_CONFIG_PATH})` },
    keyservice: { type: 'string', multiple: true, valueName: 'URL', description: 'key service endpoint, replacing keyservice.url of the configuration; repeat for replicas (failover in the order given)' },
    platform: { type: 'string', choices: ['qemu', 'azure', 'aws', 'gcp'], description: 'where the unmeasured configuration comes from: the SMBIOS credential (qemu) or the cloud\'s instance metadata (default: sextant.platform= on the kernel command line, platform in the file, else qemu)' },
    'metadata-url': { type: 'string', valueName: 'URL', description: 'base URL of the cloud metadata service (default http://169.254.169.254)' },
  },
  async run(ctx) {
    const deps = productionDeps({
      configFile: str(ctx.values, 'config'),
      keyserviceUrls: strs(ctx.values, 'keyservice'),
      platform: str(ctx.values, 'platform'),
      metadataUrl: str(ctx.values, 'metadata-url'),
      log: (record) => process.stdout.write(JSON.stringify({ ts: new Date().toISOString(), agent: 'sextant', ...record }) + '\n'),
      debug: ctx.log,
      signal: ctx.signal,
    });
    const r = await runAgent(deps);
    if (!r.ok) ctx.log(`sextant: ${r.code}: ${r.message}`);
    return r;
  },
  render: () => '',
  exitCode: (r) => r.exitCode,
};

const statusCmd: CommandSpec<AgentStatus> = {
  path: ['agent', 'status'],
  summary: 'the boot agent\'s progress in this boot: step, outcome, last error, timings',
  options: {
    'status-file': { type: 'string', valueName: 'FILE', description: 'the status file', default: DEFAULTS.statusFile },
  },
  async run(ctx) {
    const file = str(ctx.values, 'status-file') ?? DEFAULTS.statusFile;
    return (await readStatusFile(file)) ?? fail('FILE_NOT_FOUND', `${file} does not exist: the agent has not run in this boot (or uses another statusFile)`);
  },
  render: (s) => renderStatus(s),
};

export const agentRunCommands: CommandSpec<any>[] = [runCmd, statusCmd];

// ---- end boot agent section ----

export const agentCommands: CommandSpec<any>[] = [...agentDiskCommands, ...agentAttestCommands, ...agentRunCommands];
