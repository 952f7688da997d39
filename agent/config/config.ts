import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fail, SextantError } from '../../lib/errors.js';
import { normalizeFingerprint } from '../attest/transport.js';
import { VARIANTS, type Variant } from '../../attestation/variant.js';
import { CONFIG_CREDENTIAL, platformSource, PLATFORMS, readJsonFile, type Platform } from './platform-source.js';

/** /etc/sextant/agent.json, after defaults and `sextant.*=` kernel command-line overrides. */
export interface AgentConfig {
  /**
   * The key service: one URL or several replicas of it (same TLS certificate, one pin), tried
   * in order with failover (agent/attest/failover.ts). In the file `url` is a string or a list.
   */
  keyservice: { urls: string[]; fingerprint: string };
  node: { name?: string; role: 'worker' | 'control-plane'; criSocket: string; kubeletExtraArgs: Record<string, string> };
  stateDisk: {
    partLabel: string;
    partType?: string;
    /**
     * An explicit device or image file instead of the GPT-label search, with the UUID its key
     * is derived from (both or neither). For hosts and tests without a partitioned disk.
     */
    device?: string;
    diskUuid?: string;
    /**
     * false on hosts without device-mapper: the disk step stops after the LUKS format/header
     * and key check (no open, mkfs, mount, marker, bind mounts), like `agent disk prepare --no-open`.
     */
    deviceMapper: boolean;
    mapperName: string;
    mountpoint: string;
    bindMounts: { source: string; target: string }[];
  };
  tpm: { tcti: string };
  join: {
    kubeadm: string;
    configPath: string;
    attempts: number;
    retryDelayMs: number;
    /** The kubelet's certificate directory (its --cert-dir), where the issued client certificate goes. */
    kubeletPkiDir: string;
    /** What a rejoin runs instead of kubeadm join. */
    startKubelet: string[];
  };
  retry: { initialMs: number; maxMs: number };
  /** The recovery endpoint (agent/recovery), off by default; `address` is the bind address. */
  recovery: {
    enabled: boolean;
    address: string;
    port: number;
    /**
     * `sha256:<hex>` SHA-256 of the SubjectPublicKeyInfo (DER) of each admin TLS key the
     * endpoint accepts as a client, besides the key service's own certificate. Measured
     * sources only (the file in the image, the kernel command line): the credential may not set it.
     */
    adminKeys: string[];
    /**
     * Derived, not a setting: `keyservice.fingerprint` as the measured sources name it (the
     * credential's value is not used for recovery), the key service certificate the endpoint
     * accepts as a client. undefined when only the credential names one.
     */
    keyserviceCertificate?: string;
  };
  statusFile: string;
  /** Where the unmeasured configuration layer comes from (agent/config/platform-source.ts). */
  platform: Platform;
  /**
   * The attestation variant (attestation/variant.ts names): qemu-vtpm sends the TPM evidence
   * alone; the SNP variants add the CPU's report, with the VCEK/VLEK (and chain) from these files.
   */
  attestation: {
    variant: Variant;
    vcek?: string;
    chain: string[];
    /**
     * aws-sev-snp / gcp-sev-snp: the configfs-tsm report directory the report is asked from
     * (default /sys/kernel/config/tsm/report, Linux 6.7+).
     */
    configfsTsm?: string;
  };
}

export const DEFAULT_CONFIG_PATH = '/etc/sextant/agent.json';

export const DEFAULTS: AgentConfig = {
  keyservice: { urls: [], fingerprint: '' },
  node: { role: 'worker', criSocket: 'unix:///run/containerd/containerd.sock', kubeletExtraArgs: {} },
  stateDisk: {
    partLabel: 'sextant-state',
    deviceMapper: true,
    mapperName: 'sextant-state',
    mountpoint: '/var/lib/sextant-state',
    bindMounts: [
      { source: 'kubelet', target: '/var/lib/kubelet' },
      { source: 'kubernetes', target: '/etc/kubernetes' },
    ],
  },
  tpm: { tcti: 'device:/dev/tpmrm0' },
  join: {
    kubeadm: 'kubeadm',
    configPath: '/run/sextant/kubeadm-join.yaml',
    attempts: 5,
    retryDelayMs: 5000,
    kubeletPkiDir: '/var/lib/kubelet/pki',
    startKubelet: ['systemctl', 'start', 'kubelet.service'],
  },
  retry: { initialMs: 1000, maxMs: 60_000 },
  recovery: { enabled: false, address: '0.0.0.0', port: 9443, adminKeys: [] },
  statusFile: '/run/sextant/agent-status.json',
  platform: 'qemu',
  attestation: { variant: 'qemu-vtpm', chain: [] },
};

/**
 * Kernel command-line keys the agent honours (`sextant.keyservice=https://...`): an explicit
 * table, so a typo is an error instead of a silently ignored setting.
 */
const CMDLINE_KEYS: Record<string, { path: string[]; type: 'string' | 'number' | 'boolean' | 'list' }> = {
  'sextant.keyservice': { path: ['keyservice', 'url'], type: 'list' },
  'sextant.keyservice.fingerprint': { path: ['keyservice', 'fingerprint'], type: 'string' },
  'sextant.node.name': { path: ['node', 'name'], type: 'string' },
  'sextant.role': { path: ['node', 'role'], type: 'string' },
  'sextant.disk.label': { path: ['stateDisk', 'partLabel'], type: 'string' },
  'sextant.disk.type': { path: ['stateDisk', 'partType'], type: 'string' },
  'sextant.disk.device-mapper': { path: ['stateDisk', 'deviceMapper'], type: 'boolean' },
  'sextant.tpm.tcti': { path: ['tpm', 'tcti'], type: 'string' },
  'sextant.platform': { path: ['platform'], type: 'string' },
  'sextant.attestation.variant': { path: ['attestation', 'variant'], type: 'string' },
  'sextant.recovery': { path: ['recovery', 'enabled'], type: 'boolean' },
  'sextant.recovery.port': { path: ['recovery', 'port'], type: 'number' },
  'sextant.recovery.address': { path: ['recovery', 'address'], type: 'string' },
  'sextant.recovery.admin-keys': { path: ['recovery', 'adminKeys'], type: 'list' },
};

/** `sextant.*` settings from a /proc/cmdline string (other parameters are the kernel's). */
export function cmdlineOverrides(cmdline: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const word of cmdline.trim().split(/\s+/)) {
    if (!word.startsWith('sextant.')) continue;
    const eq = word.indexOf('=');
    const key = eq < 0 ? word : word.slice(0, eq);
    const raw = eq < 0 ? 'true' : word.slice(eq + 1);
    const spec = CMDLINE_KEYS[key];
    if (!spec) fail('CONFIG_INVALID', `unknown kernel command-line setting ${key} (known: ${Object.keys(CMDLINE_KEYS).join(', ')})`);
    let v: unknown = raw;
    if (spec.type === 'number') v = Number(raw);
    if (spec.type === 'list') v = raw.split(',').filter((x) => x !== '');
    if (spec.type === 'boolean') v = raw === 'true' || raw === '1' || raw === 'yes' ? true : raw === 'false' || raw === '0' || raw === 'no' ? false : raw;
    let o = out;
    for (const p of spec.path.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
    o[spec.path.at(-1)!] = v;
  }
  return out;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function merge(base: unknown, over: unknown): unknown {
  if (!isRecord(base) || !isRecord(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(base[k], v);
  return out;
}

const PIN = /^sha256:[0-9a-f]{64}$/;
const MAX_KEYSERVICE_URLS = 16;

/** Every invalid field in one CONFIG_INVALID error. */
export function validateConfig(c: AgentConfig): AgentConfig {
  const bad: string[] = [];
  const str = (v: unknown, name: string, re?: RegExp) => {
    if (typeof v !== 'string' || v === '' || (re && !re.test(v))) bad.push(`${name}: ${JSON.stringify(v)}`);
  };
  const int = (v: unknown, name: string, min: number, max: number) => {
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) bad.push(`${name}: ${JSON.stringify(v)} (integer ${min}..${max})`);
  };
  const urls = c.keyservice?.urls;
  if (!Array.isArray(urls) || urls.length === 0 || urls.length > MAX_KEYSERVICE_URLS) bad.push(`keyservice.url: ${JSON.stringify(urls)} (one https URL or a list of 1..${MAX_KEYSERVICE_URLS})`);
  else urls.forEach((u, i) => str(u, urls.length === 1 ? 'keyservice.url' : `keyservice.url[${i}]`, /^https:\/\/[^\s/]+(\/.*)?$/));
  if (Array.isArray(urls) && new Set(urls).size !== urls.length) bad.push('keyservice.url: a URL is listed twice');
  str(c.keyservice?.fingerprint, 'keyservice.fingerprint', /^sha256:[0-9a-fA-F:]{64,95}$/);
  if (c.node?.name !== undefined) str(c.node.name, 'node.name', /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
  if (c.node?.role !== 'worker' && c.node?.role !== 'control-plane') bad.push(`node.role: ${JSON.stringify(c.node?.role)} (worker or control-plane)`);
  str(c.node?.criSocket, 'node.criSocket', /^unix:\/\/\//);
  if (!isRecord(c.node?.kubeletExtraArgs) || Object.values(c.node.kubeletExtraArgs).some((v) => typeof v !== 'string')) bad.push('node.kubeletExtraArgs: want {name: string}');
  str(c.stateDisk?.partLabel, 'stateDisk.partLabel', /^.{1,36}$/);
  if (c.stateDisk?.partType !== undefined) str(c.stateDisk.partType, 'stateDisk.partType', /^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$/);
  if (c.stateDisk?.device !== undefined || c.stateDisk?.diskUuid !== undefined) {
    str(c.stateDisk?.device, 'stateDisk.device (set together with stateDisk.diskUuid)', /^\//);
    str(c.stateDisk?.diskUuid, 'stateDisk.diskUuid (set together with stateDisk.device)', /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/);
  }
  if (typeof c.stateDisk?.deviceMapper !== 'boolean') bad.push('stateDisk.deviceMapper: want true or false');
  str(c.stateDisk?.mapperName, 'stateDisk.mapperName', /^[A-Za-z0-9_.-]{1,64}$/);
  str(c.stateDisk?.mountpoint, 'stateDisk.mountpoint', /^\/./);
  if (!Array.isArray(c.stateDisk?.bindMounts) || c.stateDisk.bindMounts.some((b) => !isRecord(b) || typeof b.source !== 'string' || /(^|\/)\.\.(\/|$)|^\//.test(b.source) || typeof b.target !== 'string' || !b.target.startsWith('/'))) {
    bad.push('stateDisk.bindMounts: want [{source: relative path inside the state disk, target: absolute path}]');
  }
  str(c.tpm?.tcti, 'tpm.tcti', /^(device|swtpm|mssim):/);
  str(c.join?.kubeadm, 'join.kubeadm');
  str(c.join?.configPath, 'join.configPath', /^\//);
  int(c.join?.attempts, 'join.attempts', 1, 100);
  int(c.join?.retryDelayMs, 'join.retryDelayMs', 0, 600_000);
  str(c.join?.kubeletPkiDir, 'join.kubeletPkiDir', /^\//);
  if (!Array.isArray(c.join?.startKubelet) || c.join.startKubelet.length === 0 || c.join.startKubelet.some((a) => typeof a !== 'string' || a === '')) {
    bad.push('join.startKubelet: want a non-empty list of strings (a command and its arguments)');
  }
  int(c.retry?.initialMs, 'retry.initialMs', 1, 600_000);
  int(c.retry?.maxMs, 'retry.maxMs', 1, 3_600_000);
  if (typeof c.recovery?.enabled !== 'boolean') bad.push('recovery.enabled: want true or false');
  int(c.recovery?.port, 'recovery.port', 1, 65535);
  str(c.recovery?.address, 'recovery.address', /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:]*)$/);
  if (!Array.isArray(c.recovery?.adminKeys) || c.recovery.adminKeys.length > 64 || c.recovery.adminKeys.some((k) => typeof k !== 'string' || !PIN.test(k))) {
    bad.push('recovery.adminKeys: want at most 64 "sha256:<64 hex>" SubjectPublicKeyInfo pins');
  }
  if (c.recovery?.enabled === true && c.recovery.adminKeys?.length === 0 && c.recovery.keyserviceCertificate === undefined) {
    bad.push('recovery.enabled: no measured identity may recover this node: set keyservice.fingerprint or recovery.adminKeys in the image\'s agent.json or on the kernel command line (the credential does not count)');
  }
  str(c.statusFile, 'statusFile', /^\//);
  if (!(PLATFORMS as readonly unknown[]).includes(c.platform)) bad.push(`platform: ${JSON.stringify(c.platform)} (${PLATFORMS.join(', ')})`);
  if (!(VARIANTS as readonly unknown[]).includes(c.attestation?.variant)) bad.push(`attestation.variant: ${JSON.stringify(c.attestation?.variant)} (${VARIANTS.join(', ')})`);
  else if (c.attestation.variant !== 'qemu-vtpm' && c.attestation.vcek === undefined) bad.push(`attestation.vcek: ${c.attestation.variant} needs the VCEK/VLEK certificate file`);
  if (c.attestation?.vcek !== undefined) str(c.attestation.vcek, 'attestation.vcek', /^\//);
  if (c.attestation?.configfsTsm !== undefined) {
    str(c.attestation.configfsTsm, 'attestation.configfsTsm', /^\//);
    if (c.attestation.variant !== 'aws-sev-snp' && c.attestation.variant !== 'gcp-sev-snp') bad.push(`attestation.configfsTsm: only aws-sev-snp and gcp-sev-snp ask configfs-tsm for a report (variant ${JSON.stringify(c.attestation.variant)})`);
  }
  if (!Array.isArray(c.attestation?.chain) || c.attestation.chain.some((f) => typeof f !== 'string' || !f.startsWith('/'))) bad.push('attestation.chain: want a list of absolute file paths');
  if (bad.length) fail('CONFIG_INVALID', `invalid agent configuration: ${bad.join('; ')}`);
  return c;
}

/** `keyservice.fingerprint` normalized to lower-case hex without colons (as the TLS pin compares it). */
function normalizedPin(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  try {
    return normalizeFingerprint(v);
  } catch {
    return undefined; // validateConfig names the bad keyservice.fingerprint
  }
}

/**
 * Defaults <- file <- credential <- kernel command line (the last word wins). Only the file
 * (the image's /etc/sextant, inside the dm-verity root) and the kernel command line (the
 * UKI's .cmdline, PCR 11; an override, PCR 12) are measured; the credential (SMBIOS type 11)
 * is not, so it may not name who can recover the node.
 */
export function resolveConfig(file: unknown, cmdline: string, credential?: unknown, keyserviceUrls?: readonly string[]): AgentConfig {
  for (const [what, v] of [['the agent configuration', file], ['the credential', credential]] as const) {
    if (v !== undefined && !isRecord(v)) fail('CONFIG_INVALID', `${what} must be a JSON object`);
  }
  const cred = (credential ?? {}) as Record<string, unknown>;
  if (isRecord(cred.recovery) && 'adminKeys' in cred.recovery) {
    fail('CONFIG_INVALID', `recovery.adminKeys in the credential ${CONFIG_CREDENTIAL}: who may recover this node must come from a measured source (the image's agent.json or the kernel command line)`);
  }
  const over = cmdlineOverrides(cmdline);
  for (const src of [file, cred, over] as unknown[]) {
    if (isRecord(src) && isRecord(src.recovery) && 'keyserviceCertificate' in src.recovery) fail('CONFIG_INVALID', 'recovery.keyserviceCertificate is derived from keyservice.fingerprint, not a setting');
  }
  const measured = merge(file ?? {}, over) as { keyservice?: { fingerprint?: unknown } };
  const merged = merge(merge(merge(DEFAULTS, file ?? {}), cred), over) as AgentConfig & { keyservice: { url?: unknown } };
  const { url, ...keyservice } = isRecord(merged.keyservice) ? merged.keyservice : { url: undefined };
  // The old single-string form and the list form of keyservice.url are one list here.
  // `--keyservice` on the agent's own command line (the unit in the image) names them last.
  const urls = keyserviceUrls?.length ? [...keyserviceUrls] : typeof url === 'string' ? [url] : url;
  const c = { ...merged, keyservice: { ...keyservice, urls } } as AgentConfig;
  const keyserviceCertificate = normalizedPin(measured.keyservice?.fingerprint);
  if (isRecord(c.recovery)) c.recovery = { ...c.recovery, keyserviceCertificate };
  return validateConfig(c);
}

export { CONFIG_CREDENTIAL };

export interface ConfigSources {
  /** The configuration file (default /etc/sextant/agent.json); missing is fine if the platform provides one. */
  file?: string;
  /** $CREDENTIALS_DIRECTORY as systemd set it for the unit; unset outside a unit (qemu platform). */
  credentialsDirectory?: string;
  cmdlinePath?: string;
  /** `sextant agent run --keyservice URL ...`: replaces keyservice.url of every other source. */
  keyserviceUrls?: readonly string[];
  /** `--platform`: before `sextant.platform=` on the kernel command line and `platform` in the file. */
  platform?: string;
  /** `--metadata-url`: the cloud metadata service's base URL (default http://169.254.169.254). */
  metadataUrl?: string;
}

/**
 * Defaults <- the file <- what the platform provides (the systemd credential
 * `sextant.agent.json` on QEMU, the instance's user data or metadata attribute on a cloud:
 * agent/config/platform-source.ts) <- `sextant.*` kernel command-line keys. The platform's
 * layer lets one image boot in many clusters; the file and it may each be missing, but not both.
 */
export async function loadConfig(src: ConfigSources = {}): Promise<{ config: AgentConfig; sources: string[] }> {
  const file = src.file ?? DEFAULT_CONFIG_PATH;
  const fromFile = await readJsonFile(file);
  const cmdlinePath = src.cmdlinePath ?? '/proc/cmdline';
  const cmdline = await readFile(cmdlinePath, 'utf8').catch(() => '');
  const platform = src.platform ?? cmdlineOverrides(cmdline).platform ?? fromFile?.platform ?? DEFAULTS.platform;
  if (!(PLATFORMS as readonly unknown[]).includes(platform)) fail('CONFIG_INVALID', `platform ${JSON.stringify(platform)}: want one of ${PLATFORMS.join(', ')}`);
  const source = platformSource(platform as Platform, { credentialsDirectory: src.credentialsDirectory, metadataUrl: src.metadataUrl });
  const fromPlatform = await source?.read();
  if (fromFile === undefined && fromPlatform === undefined) {
    const none = source ? `${source.name} has none` : `no systemd credential directory is set ($CREDENTIALS_DIRECTORY, credential ${CONFIG_CREDENTIAL})`;
    fail('FILE_NOT_FOUND', `no agent configuration: ${file} does not exist and ${none}`);
  }
  const sources = [fromFile !== undefined && file, fromPlatform !== undefined && source?.name, /(^|\s)sextant\./.test(cmdline) && cmdlinePath, !!src.keyserviceUrls?.length && '--keyservice'].filter((x): x is string => typeof x === 'string');
  const config = resolveConfig(fromFile, cmdline, fromPlatform, src.keyserviceUrls);
  // The platform a source was read for is the platform, whatever that source says.
  return { config: { ...config, platform: platform as Platform }, sources };
}
