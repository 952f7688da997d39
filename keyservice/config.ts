import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SextantError } from '../lib/errors.js';
import type { Variant } from '../attestation/variant.js';
import { ekRootStore } from './ek-roots/store.js';
import { checkSnpConfig, parseVariant, type SnpVariantConfig } from './variant/variants.js';
import { checkEtcdTls, ENDPOINT_RE, type EtcdStoreConfig } from './store/etcd/endpoints.js';

/**
 * Key service configuration: a JSON file (`--config`) with the same keys as the flags; flags
 * win over the file. Paths in the file are relative to the file's directory.
 */
export interface KeyServiceConfig {
  /** host:port; host must be an IP literal or localhost. Default 127.0.0.1:8443. */
  listen: string;
  stateDir: string;
  measurements: string;
  /** Signature of `measurements` (default: measurements + ".sig"). */
  measurementsSig?: string;
  measurementsKey: string;
  /** A second, older signed measurements file still accepted during a rollout window. */
  previousMeasurements?: string;
  previousMeasurementsSig?: string;
  /** EK CA certificate files (PEM); each certificate in them is a trust anchor. */
  ekCa?: string[];
  /** Named EK CA stores (keyservice/ek-roots/: `tpm-vendors`, `gcp-vtpm`), added to ekCa. */
  ekCaStore?: string[];
  /** Where the stores' certificates are (default: each store's own default directories). */
  ekCaStoreDir?: string[];
  /** Default: stateDir/audit.log. */
  auditLog?: string;
  /** The admin socket (docs/rollout.md); default stateDir/admin.sock. */
  adminSocket?: string;
  tlsCert?: string;
  tlsKey?: string;
  requireEventLog: boolean;
  nonceTtlSeconds: number;
  /** How long after a release the node may confirm its PCR 15 lock (default 900). */
  confirmTtlSeconds: number;
  maxRequestBytes: number;
  rateLimit: { burst: number; perSecond: number };
  join?: { apiServerEndpoint: string; caCert: string; caKey: string; tokenTtlSeconds: number; certDays: number; tokenCommand?: string };
  /**
   * `variant` (`--attestation-variant`, default qemu-vtpm): how a node's AK is trusted
   * (keyservice/variant/, docs/attestation-variants.md); `snp` the policy of an SNP variant.
   * Mutual attestation (off by default): the service quotes its own TPM for agents that check it.
   * `tcti` is the service's TPM (`--tpm-tcti`), `ekChain` intermediate certificates to send with its EK certificate.
   */
  attestation?: { variant?: Variant; snp?: SnpVariantConfig; tcti?: string; ekChain?: string[] };
  /** JSON file {ekCertSha256: nodeName}: bind node names to TPMs (off when absent). */
  nodeInventory?: string;
  /**
   * Where sessions, nonces, bindings and the audit log live (keyservice/store/, docs/ha.md):
   * `local` (default) the state directory and memory; `etcd` an etcd v3 cluster shared by replicas.
   */
  store?: 'local' | 'etcd';
  etcd?: EtcdStoreConfig;
}

export const DEFAULTS = {
  listen: '127.0.0.1:8443',
  requireEventLog: false,
  nonceTtlSeconds: 60,
  confirmTtlSeconds: 900,
  maxRequestBytes: 512 * 1024,
  rateLimit: { burst: 20, perSecond: 2 },
} as const;

const PATH_KEYS = ['nodeInventory', 'stateDir', 'measurements', 'measurementsSig', 'measurementsKey', 'previousMeasurements', 'previousMeasurementsSig', 'auditLog', 'adminSocket', 'tlsCert', 'tlsKey'] as const;

function invalid(msg: string): never {
  throw new SextantError({ code: 'CONFIG_INVALID', message: msg });
}

export async function readConfigFile(file: string): Promise<Partial<KeyServiceConfig>> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new SextantError({ code: 'CONFIG_INVALID', message: `${file} is not readable JSON`, cause });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) invalid(`${file}: expected a JSON object`);
  const c = raw as Record<string, unknown>;
  const base = path.dirname(path.resolve(file));
  const abs = (p: unknown, key: string): string => (typeof p === 'string' ? path.resolve(base, p) : invalid(`${file}: ${key} must be a path`));
  for (const k of PATH_KEYS) if (c[k] !== undefined) c[k] = abs(c[k], k);
  if (c.ekCa !== undefined) c.ekCa = (Array.isArray(c.ekCa) ? c.ekCa : [c.ekCa]).map((p) => abs(p, 'ekCa'));
  if (c.ekCaStoreDir !== undefined) c.ekCaStoreDir = (Array.isArray(c.ekCaStoreDir) ? c.ekCaStoreDir : [c.ekCaStoreDir]).map((p) => abs(p, 'ekCaStoreDir'));
  if (c.ekCaStore !== undefined) c.ekCaStore = Array.isArray(c.ekCaStore) ? c.ekCaStore : [c.ekCaStore];
  if (c.join !== undefined && typeof c.join === 'object' && c.join !== null) {
    const j = c.join as Record<string, unknown>;
    j.caCert = abs(j.caCert, 'join.caCert');
    j.caKey = abs(j.caKey, 'join.caKey');
    // A command with a path is relative to the file; a bare name is looked up on PATH.
    if (typeof j.tokenCommand === 'string' && j.tokenCommand.includes('/')) j.tokenCommand = abs(j.tokenCommand, 'join.tokenCommand');
  }
  if (c.attestation !== undefined && typeof c.attestation === 'object' && c.attestation !== null) {
    const a = c.attestation as Record<string, unknown>;
    if (a.ekChain !== undefined) a.ekChain = (Array.isArray(a.ekChain) ? a.ekChain : [a.ekChain]).map((p) => abs(p, 'attestation.ekChain'));
    const snp = a.snp as Record<string, unknown> | undefined;
    if (snp && typeof snp === 'object') {
      if (snp.crl !== undefined) snp.crl = abs(snp.crl, 'attestation.snp.crl');
      const root = snp.testOnlyRoot as Record<string, unknown> | undefined;
      if (root && typeof root === 'object') root.cert = abs(root.cert, 'attestation.snp.testOnlyRoot.cert');
    }
  }
  if (c.etcd !== undefined && typeof c.etcd === 'object' && c.etcd !== null) {
    const t = (c.etcd as Record<string, unknown>).tls as Record<string, unknown> | undefined;
    if (t && typeof t === 'object') for (const k of ['ca', 'cert', 'key'] as const) if (t[k] !== undefined) t[k] = abs(t[k], `etcd.tls.${k}`);
  }
  const known = new Set<string>([...PATH_KEYS, 'listen', 'ekCa', 'ekCaStore', 'ekCaStoreDir', 'requireEventLog', 'nonceTtlSeconds', 'confirmTtlSeconds', 'maxRequestBytes', 'rateLimit', 'join', 'attestation', 'store', 'etcd']);
  const unknown = Object.keys(c).filter((k) => !known.has(k));
  if (unknown.length) invalid(`${file}: unknown key(s) ${unknown.join(', ')}`);
  return c as Partial<KeyServiceConfig>;
}

/** Merges file and flags over the defaults and checks the result. */
export function resolveConfig(fromFile: Partial<KeyServiceConfig>, fromFlags: Partial<KeyServiceConfig>): KeyServiceConfig {
  const defined = Object.fromEntries(Object.entries(fromFlags).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0)));
  const c = { ...DEFAULTS, ...fromFile, ...defined } as Partial<KeyServiceConfig>;
  const missing = (['stateDir', 'measurements', 'measurementsKey'] as const).filter((k) => !c[k]);
  // aws-sev-snp checks no EK chain (AWS issues no EK certificates): no EK CA needed there.
  if (!c.ekCa?.length && !c.ekCaStore?.length && c.attestation?.variant !== 'aws-sev-snp') missing.push('ekCa (or --ek-ca-store)' as never);
  for (const name of c.ekCaStore ?? []) ekRootStore(name);
  if (c.ekCaStoreDir?.length && !c.ekCaStore?.length) invalid('ekCaStoreDir is where an EK CA store is read from: set ekCaStore');
  if (missing.length) {
    throw new SextantError({ code: 'USAGE', message: `missing ${missing.map((k) => '--' + k.replace(/[A-Z]/g, (m) => '-' + m.toLowerCase())).join(', ')}` });
  }
  parseListen(c.listen!);
  for (const k of ['nonceTtlSeconds', 'confirmTtlSeconds', 'maxRequestBytes'] as const) {
    if (!Number.isInteger(c[k]) || (c[k] as number) <= 0) invalid(`${k} must be a positive integer`);
  }
  const rl = c.rateLimit as { burst?: unknown; perSecond?: unknown } | undefined;
  if (!rl || typeof rl.burst !== 'number' || typeof rl.perSecond !== 'number' || rl.burst < 1 || rl.perSecond <= 0) invalid('rateLimit must be {burst >= 1, perSecond > 0}');
  if (c.join) {
    const j = c.join;
    if (typeof j.apiServerEndpoint !== 'string' || !/^[A-Za-z0-9.:[\]-]+:\d+$/.test(j.apiServerEndpoint)) invalid('join.apiServerEndpoint must be host:port');
    j.tokenTtlSeconds ??= 3600;
    j.certDays ??= 365;
  }
  if (c.attestation !== undefined) {
    const a = c.attestation;
    const unknown = typeof a === 'object' && a !== null ? Object.keys(a).filter((k) => !['variant', 'snp', 'tcti', 'ekChain'].includes(k)) : [];
    if (typeof a !== 'object' || a === null || unknown.length || (a.tcti !== undefined && (typeof a.tcti !== 'string' || !a.tcti))) {
      invalid('attestation must be {variant?: qemu-vtpm|azure-sev-snp|aws-sev-snp|gcp-sev-snp, snp?: {...}, tcti?: "<TCTI of the service\'s TPM>", ekChain?: [PEM files]}');
    }
    a.variant = parseVariant(a.variant);
    if (a.snp !== undefined && a.variant === 'qemu-vtpm') invalid('attestation.snp is the policy of an SNP variant: set attestation.variant');
    a.snp = checkSnpConfig(a.snp);
  }
  checkStore(c);
  return c as KeyServiceConfig;
}

const ETCD_KEYS: readonly string[] = ['endpoints', 'prefix', 'tls', 'timeoutMs'] satisfies (keyof EtcdStoreConfig)[];

function checkStore(c: Partial<KeyServiceConfig>): void {
  c.store ??= 'local';
  if (c.store !== 'local' && c.store !== 'etcd') invalid(`store must be local or etcd, got ${JSON.stringify(c.store)}`);
  if (c.store === 'local') {
    if (c.etcd !== undefined) invalid('etcd settings need store: etcd (--store etcd)');
    return;
  }
  const e = c.etcd as Partial<EtcdStoreConfig> | undefined;
  if (!e || !Array.isArray(e.endpoints) || e.endpoints.length === 0) throw new SextantError({ code: 'USAGE', message: '--store etcd needs --etcd-endpoints URL[,URL...]' });
  // Closed like the file's top level: a misspelt key (timeoutMS, cacert) is refused, not ignored.
  const unknown = Object.keys(e).filter((k) => !ETCD_KEYS.includes(k));
  if (unknown.length) invalid(`etcd: unknown key(s) ${unknown.join(', ')} (known: ${ETCD_KEYS.join(', ')})`);
  if (e.timeoutMs !== undefined && !(Number.isInteger(e.timeoutMs) && e.timeoutMs >= 100 && e.timeoutMs <= 60_000)) invalid('etcd.timeoutMs must be an integer from 100 to 60000 (ms per etcd call)');
  const bad = e.endpoints.find((x) => typeof x !== 'string' || !ENDPOINT_RE.test(x));
  if (bad !== undefined) invalid(`etcd endpoint ${JSON.stringify(bad)} is not http(s)://HOST:PORT`);
  if (e.prefix !== undefined && (typeof e.prefix !== 'string' || !/^[A-Za-z0-9._/-]{1,64}$/.test(e.prefix))) invalid('etcd.prefix must be 1-64 characters of [A-Za-z0-9._/-]');
  if (
    e.tls !== undefined &&
    (typeof e.tls !== 'object' || e.tls === null || Object.keys(e.tls).some((k) => !['ca', 'cert', 'key'].includes(k)) || typeof e.tls.ca !== 'string' || (e.tls.cert === undefined) !== (e.tls.key === undefined))
  ) {
    invalid('etcd.tls must be {ca, cert?, key?} (cert and key together)');
  }
  checkEtcdTls(e as EtcdStoreConfig);
}

export function parseListen(s: string): { host: string; port: number } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|localhost):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new SextantError({ code: 'USAGE', message: `--listen must be IP:PORT (e.g. 127.0.0.1:8443), got "${s}"` });
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}
