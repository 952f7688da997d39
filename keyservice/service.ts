import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SextantError, isSextantError } from '../lib/errors.js';
import { parseEventLog } from '../measurements/eventlog/index.js';
import { replayState, stateToBanks } from '../measurements/eventlog/replay.js';
import { KeyServiceAttestor } from './attestor.js';
import { ClusterCa } from './kubelet-cert.js';
import { parseListen, type KeyServiceConfig } from './config.js';
import { loadReferenceSet, readSignedMeasurements, referenceSetFromSigned, type SignedMeasurementsBytes } from '../attestation/policy/load-reference.js';
import { RateLimiter } from './rate-limit.js';
import { ReferenceStore } from './reference-store.js';
import { KeyServiceServer, type Answer } from './server.js';
import { ServiceSelfAttestation } from './self-attest.js';
import type { AttestationTpm } from '../attestation/tpm/tpm.js';
import { parseNodeInventory } from './policy/node-name.js';
import { openStateDir } from './state-dir.js';
import { openLocalStore } from './store/local.js';
import type { AuditSink, KeyServiceStore, MeasurementsChannel } from './store/store.js';
import { loadCaCertificates } from '../attestation/tpm/ek-chain.js';
import { loadEkRootStore } from './ek-roots/store.js';
import type { EventLogReplayer } from '../attestation/tpm/event-log.js';
import { codecTpmChecks } from '../attestation/tpm/codec-checks.js';
import type { TpmChecks } from '../attestation/tpm/checks.js';
import { isSnpVariant, type Variant } from '../attestation/variant.js';
import { loadSnpSetup } from './variant/variants.js';

/** Everything `sextant keyservice` starts, wired together; `close()` stops it. */
export interface RunningKeyService {
  url: string;
  port: number;
  fingerprint: string;
  clusterId: string;
  created: string[];
  auditLog: string;
  /** The attestation variant (keyservice/variant/), and the SHA-256 of a test-only AMD root if one is trusted. */
  variant: Variant;
  testOnlyRoot?: string;
  references: ReferenceStore;
  /** The request handler without the HTTP layer (KeyServiceServer.answer): fuzzing calls it directly. */
  answer(route: string, body: Buffer | string, client: string): Promise<Answer>;
  close(): Promise<void>;
}

export interface StartOptions {
  log?: (line: string) => void;
  /** Test hooks: a clock for nonce expiry, a different TPM check implementation. */
  clock?: () => number;
  tpm?: TpmChecks;
  rolloutMs?: number;
  watchIntervalMs?: number;
  /**
   * Opens the service's own TPM for mutual attestation (`attestation.tcti`). Handed in by the
   * caller (cli/ passes the koffi -> ESYS engine), so the service loads no TPM library unless asked.
   */
  openServiceTpm?: (tcti: string, log?: (line: string) => void) => Promise<AttestationTpm>;
}

/**
 * The firmware log's SHA-256 bank (the quote covers SHA-256 PCRs). A log without SHA-256
 * digests (the TCG 1.2 format is SHA-1 only) is a valid log of a format this check cannot use:
 * EVENTLOG_FORMAT_UNSUPPORTED naming the format and its banks, never a replay mismatch.
 */
export const replaySha256: EventLogReplayer = (bytes) => {
  let log;
  try {
    log = parseEventLog(bytes);
  } catch (e) {
    if (isSextantError(e) && e.isInputError) throw new SextantError({ code: 'EVENTLOG_REPLAY_MISMATCH', message: `event log unreadable: ${e.message}`, cause: e });
    throw e;
  }
  if (!log.banks.some((b) => b.alg === 'sha256')) {
    throw new SextantError({
      code: 'EVENTLOG_FORMAT_UNSUPPORTED',
      message: `the event log is in the ${log.format === 'tcg1.2-sha1' ? 'TCG 1.2 format (tcg1.2-sha1: SHA-1 digests only)' : `${log.format} format`} with bank(s) ${log.banks.map((b) => b.alg).join(', ')}: it has no SHA-256 digests to check the SHA-256 quote against`,
    });
  }
  return { format: log.format, pcrs: stateToBanks(replayState(log, ['sha256']).state).sha256 ?? {} };
};

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    throw new SextantError({ code: 'FILE_NOT_FOUND', message: `cannot read ${what} ${file}`, cause });
  }
}

/**
 * Replicas enforce one measurements file: at start a replica adopts the one in the store (a
 * replica started from an older ConfigMap does not roll the others back), or publishes its
 * own when the store has none; then every file a replica loads is published and every
 * replica loads what the others publish (watch), each checking the signature itself.
 */
async function shareMeasurements(
  channel: MeasurementsChannel,
  references: ReferenceStore,
  loaded: () => { signed: SignedMeasurementsBytes } | undefined,
  offer: (m: SignedMeasurementsBytes) => void,
  setPublisher: (p: (m: SignedMeasurementsBytes) => void) => void,
  log?: (line: string) => void,
): Promise<void> {
  const current = await channel.current();
  const mine = loaded()?.signed;
  if (!current && mine) await channel.publish(mine);
  if (current && mine && !current.bytes.equals(mine.bytes)) {
    offer(current);
    await references.reload();
  }
  setPublisher((m) => void channel.publish(m).catch((e: unknown) => log?.(`measurements not published to the other replicas: ${(e as Error).message}`)));
  await channel.watch((m) => {
    offer(m);
    void references.reload();
  });
}

export async function startKeyService(cfg: KeyServiceConfig, o: StartOptions = {}): Promise<RunningKeyService> {
  const { host, port } = parseListen(cfg.listen);
  const pub = await readText(cfg.measurementsKey, 'measurements public key');
  const sigOf = (f: string, s?: string) => s ?? f + '.sig';
  const clock = o.clock ?? Date.now;
  const auditPath = cfg.auditLog ?? path.join(cfg.stateDir, 'audit.log');

  // Measurements first: a bad signature must stop the service before it creates anything.
  // With replicas the file in force may come from another replica (store.measurements): the
  // next reload loads that one (its signature checked here), else this replica's own file.
  let offered: SignedMeasurementsBytes | undefined;
  let loaded: { from: 'file' | 'store'; signed: SignedMeasurementsBytes } | undefined;
  const loadCurrent = async () => {
    const from = offered ? 'store' : 'file';
    const signed = offered ?? (await readSignedMeasurements(cfg.measurements, sigOf(cfg.measurements, cfg.measurementsSig)));
    offered = undefined;
    const set = referenceSetFromSigned(signed, pub, from === 'store' ? 'the measurements another replica published' : cfg.measurements);
    loaded = { from, signed };
    return set;
  };
  let publish: ((m: SignedMeasurementsBytes) => void) | undefined;
  const pinnedPrevious = cfg.previousMeasurements
    ? await loadReferenceSet(cfg.previousMeasurements, sigOf(cfg.previousMeasurements, cfg.previousMeasurementsSig), pub)
    : undefined;
  let audit: AuditSink | undefined;
  const references = await ReferenceStore.open({
    load: loadCurrent,
    rolloutMs: o.rolloutMs ?? 24 * 3600_000,
    pinnedPrevious,
    now: clock,
    onReload: (r) => {
      if (r.ok) o.log?.(`measurements reloaded${loaded?.from === 'store' ? ' from another replica' : ''}: now ${r.label}, still accepting ${r.previous} during the rollout window`);
      else o.log?.(`measurements change refused, keeping the current set: ${(r.error as Error).message}`);
      void audit?.append({ decision: 'measurements-reload', ...(r.ok ? { accepted: r.label, previous: r.previous, from: loaded?.from } : { refused: (r.error as Error).message }) }, { deferred: true });
      // A file this replica loaded from its own disk is the replicas' new file.
      if (r.ok && loaded?.from === 'file') publish?.(loaded.signed);
    },
  });
  const ekCas = loadCaCertificates(await Promise.all((cfg.ekCa ?? []).map((f) => readText(f, 'EK CA'))));
  if (cfg.ekCa?.length && ekCas.length === 0) throw new SextantError({ code: 'CONFIG_INVALID', message: 'no certificate found in the --ek-ca files' });
  const ekStores = [];
  for (const name of cfg.ekCaStore ?? []) {
    const loaded = await loadEkRootStore(name, cfg.ekCaStoreDir);
    ekStores.push({ name, version: loaded.store.version, found: loaded.found.length, pinned: loaded.store.certificates.length });
    o.log?.(`EK CA store ${name} (${loaded.store.version}): ${loaded.found.length} of ${loaded.store.certificates.length} pinned CAs found in ${loaded.dirs.join(', ')}`);
    ekCas.push(...loaded.anchors);
  }

  const state = await openStateDir(cfg.stateDir, { log: o.log, tls: cfg.tlsCert && cfg.tlsKey ? { certFile: cfg.tlsCert, keyFile: cfg.tlsKey } : undefined });
  const store: KeyServiceStore =
    cfg.store === 'etcd'
      ? // Loaded only here: the gRPC client costs nothing to a single-process service.
        await (await import('./store/etcd/store.js')).openEtcdStore(cfg.etcd!, { masterSecret: state.masterSecret, salt: state.salt, nonceTtlMs: cfg.nonceTtlSeconds * 1000, clock })
      : await openLocalStore({ stateDir: cfg.stateDir, auditPath, nonceTtlMs: cfg.nonceTtlSeconds * 1000, clock });
  audit = store.audit;
  if (store.measurements) await shareMeasurements(store.measurements, references, () => loaded, (m) => (offered = m), (p) => (publish = p), o.log);
  const join = cfg.join
    ? { apiServerEndpoint: cfg.join.apiServerEndpoint, tokenTtlSeconds: cfg.join.tokenTtlSeconds, certDays: cfg.join.certDays, tokenCommand: cfg.join.tokenCommand, ca: await ClusterCa.load(cfg.join.caCert, cfg.join.caKey) }
    : undefined;
  const nonces = store.nonces;
  const variant = cfg.attestation?.variant ?? 'qemu-vtpm';
  const snp = isSnpVariant(variant) ? await loadSnpSetup(variant, cfg.attestation?.snp ?? {}) : undefined;
  const attestor = new KeyServiceAttestor({
    snp,
    ekCas,
    tpm: o.tpm ?? codecTpmChecks,
    nonces,
    sessions: (spec) => store.sessions(spec),
    references: () => references.sets(),
    masterSecret: state.masterSecret,
    salt: state.salt,
    audit,
    replayEventLog: replaySha256,
    requireEventLog: cfg.requireEventLog,
    confirmTtlMs: cfg.confirmTtlSeconds * 1000,
    nodeInventory: cfg.nodeInventory ? parseNodeInventory(await readText(cfg.nodeInventory, 'node inventory'), cfg.nodeInventory) : undefined,
    diskBindings: store.bindings,
    join,
    now: () => new Date(clock()),
    log: o.log,
  });
  let selfAttestation: ServiceSelfAttestation | undefined;
  if (cfg.attestation?.tcti) {
    if (!o.openServiceTpm) throw new SextantError({ code: 'CONFIG_INVALID', message: 'attestation is configured but no TPM engine was given to open it' });
    const chain = loadCaCertificates(await Promise.all((cfg.attestation.ekChain ?? []).map((f) => readText(f, 'EK chain certificate')))).map((c) => c.raw);
    const tpm = await o.openServiceTpm(cfg.attestation.tcti, o.log);
    try {
      selfAttestation = await ServiceSelfAttestation.open(tpm, state.fingerprint, chain);
    } catch (e) {
      await tpm.dispose();
      throw e;
    }
  }
  const server = new KeyServiceServer({
    selfAttestation,
    tlsKeyPem: state.tlsKeyPem,
    tlsCertPem: state.tlsCertPem,
    nonces,
    attestor,
    limiter: new RateLimiter(cfg.rateLimit.burst, cfg.rateLimit.perSecond, clock),
    maxRequestBytes: cfg.maxRequestBytes,
    log: o.log,
  });
  const addr = await server.listen(host, port);
  references.watch([cfg.measurements, sigOf(cfg.measurements, cfg.measurementsSig)], o.watchIntervalMs);
  // Deferred: on a full disk the service still comes up (refusing with AUDIT_UNAVAILABLE) and
  // this record is written first once space returns.
  void audit.append({ decision: 'start', listen: `${host}:${addr.port}`, fingerprint: state.fingerprint, measurements: references.sets().map((s) => s.label), selfAttestation: selfAttestation !== undefined, ekStores, variant, testOnlyRoot: snp?.testOnlyRoot }, { deferred: true });
  await audit.settled();
  return {
    url: `https://${host.includes(':') ? `[${host}]` : host}:${addr.port}`,
    port: addr.port,
    fingerprint: state.fingerprint,
    clusterId: attestor.clusterIdHex,
    variant,
    ...(snp?.testOnlyRoot && { testOnlyRoot: snp.testOnlyRoot }),
    created: state.created,
    auditLog: store.auditLocation,
    references,
    answer: (route, body, client) => server.answer(route, body, client),
    close: async () => {
      references.unwatch();
      await server.close();
      await selfAttestation?.dispose();
      await store.close();
      state.masterSecret.fill(0);
      state.salt.fill(0);
    },
  };
}
