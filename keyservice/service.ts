import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SextantError, isSextantError } from '../lib/errors.js';
import { parseEventLog } from '../measurements/eventlog/index.js';
import { replayState, stateToBanks } from '../measurements/eventlog/replay.js';
import { KeyServiceAttestor } from './attestor.js';
import { ClusterCa } from './kubelet-cert.js';
import { parseListen, type KeyServiceConfig } from './config.js';
import { loadReferenceSet, readSignedMeasurements, verifiedMeasurements } from '../attestation/policy/load-reference.js';
import { parseJsonBounded } from '../lib/json-bounded.js';
import { writeFileAtomic } from '../lib/write-file-atomic.js';
import { parseSavedRollout, type AdminRequest } from './admin/protocol.js';
import { startAdminServer } from './admin/server.js';
import { RateLimiter } from './rate-limit.js';
import { ReferenceStore, type RolloutChange, type SavedRollout } from './reference-store.js';
import { KeyServiceServer, type Answer } from './server.js';
import { ServiceSelfAttestation } from './self-attest.js';
import type { AttestationTpm } from '../attestation/tpm/tpm.js';
import { parseNodeInventory } from './policy/node-name.js';
import { openStateDir } from './state-dir.js';
import { openLocalStore } from './store/local.js';
import type { AuditSink, KeyServiceStore, MeasurementsChannel } from './store/store.js';
import type { AuditDecision } from './audit/record.js';
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
  /** The admin socket `sextant keyservice measurements` talks to (docs/rollout.md). */
  adminSocket: string;
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

/** Where the sets this service holds are saved across restarts (docs/rollout.md). */
export function rolloutStatePath(stateDir: string): string {
  return path.join(stateDir, 'measurements-rollout.json');
}

async function readSavedRollout(file: string, log?: (line: string) => void): Promise<SavedRollout | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return parseSavedRollout(parseJsonBounded(text));
  } catch (e) {
    log?.(`${file} is not a saved rollout state, ignored: ${(e as Error).message}`);
    return undefined;
  }
}

const AUDIT_DECISION = { file: 'measurements-reload', store: 'measurements-reload', start: 'measurements-reload', admin: 'measurements-load' } as const;

function auditOf(c: RolloutChange): AuditDecision {
  if (c.kind === 'retire') return { decision: 'measurements-retire', retired: c.retired, imageVersion: c.imageVersion, from: c.from };
  if (c.kind === 'adopt') return { decision: 'measurements-reload', accepted: c.accepted, previous: c.previous, from: 'store' };
  return { decision: AUDIT_DECISION[c.from], accepted: c.accepted, imageVersion: c.imageVersion, previous: c.previous, overlapUntil: c.overlapUntil, from: c.from, ...(c.forced && { forced: true, highWater: c.forced.highWater, refusedAs: c.forced.reason }) };
}

function describe(c: RolloutChange): string {
  if (c.kind === 'retire') return `measurements ${c.retired} retired: no longer accepted`;
  const from = c.kind === 'adopt' || c.from === 'store' ? ' from another replica' : c.from === 'admin' ? ' by the admin socket' : '';
  const overlap = c.kind === 'load' && c.overlapUntil ? `, still accepting ${c.previous} until ${c.overlapUntil}` : c.previous ? `, ${c.previous} retired` : '';
  const forced = c.kind === 'load' && c.forced ? ` (FORCED past ${c.forced.reason}, high-water mark ${c.forced.highWater})` : '';
  return `measurements loaded${from}: now ${c.accepted}${overlap}${forced}`;
}

/**
 * The sets in force after a start: those this service saved last time, then (replicas) those
 * in the store, then the --measurements file loaded against them (a newer file becomes
 * current, an older one is refused and logged: the sets saved stay). From then on every change
 * is published to the store and saved before it is in force, and every replica adopts what
 * another published.
 */
async function openRollout(references: ReferenceStore, o: { stateDir: string; channel?: MeasurementsChannel; audit: AuditSink; log?: (line: string) => void }): Promise<void> {
  const local = rolloutStatePath(o.stateDir);
  const saveLocal = (doc: SavedRollout) => writeFileAtomic(local, JSON.stringify(doc) + '\n');
  const saved = await readSavedRollout(local, o.log);
  if (saved) await references.adopt(saved, { from: 'start', log: o.log });
  const shared = o.channel ? await o.channel.current() : undefined;
  if (shared) await references.adopt(shared, { from: 'store', log: o.log });
  references.setCommit(async (doc, change) => {
    if (change.kind === 'load' && change.forced) await o.audit.append(auditOf(change));
    await o.channel?.publish(doc);
    await saveLocal(doc);
  });
  await references.reload('start');
  if (o.channel && !shared) await o.channel.publish(references.saved());
  await saveLocal(references.saved());
  await o.channel?.watch((doc) => {
    void references
      .adopt(doc, { from: 'store', log: o.log })
      .then(async (changed) => {
        if (changed) await saveLocal(references.saved());
      })
      .catch((e: unknown) => o.log?.(`measurements from another replica not adopted: ${(e as Error).message}`));
  });
}

/** One admin request (keyservice/admin/protocol.ts); a refused load is audited. */
async function adminAnswer(references: ReferenceStore, r: AdminRequest, rolloutMs: number, audit: () => AuditSink | undefined): Promise<unknown> {
  if (r.op === 'status') return references.status();
  if (r.op === 'retire') return references.retire(r.imageVersion);
  try {
    const { loaded, previous } = await references.load({ bytes: Buffer.from(r.measurements, 'base64'), sig: r.sig }, { from: 'admin', overlapMs: r.overlapMs ?? rolloutMs, force: r.force, name: 'the measurements file sent to the admin socket' });
    return { loaded, ...(previous && { previous }) };
  } catch (e) {
    void audit()?.append({ decision: 'measurements-load', refused: (e as Error).message, code: isSextantError(e) ? e.code : undefined, from: 'admin', force: r.force === true }, { deferred: true });
    throw e;
  }
}

export async function startKeyService(cfg: KeyServiceConfig, o: StartOptions = {}): Promise<RunningKeyService> {
  const { host, port } = parseListen(cfg.listen);
  const pub = await readText(cfg.measurementsKey, 'measurements public key');
  const sigOf = (f: string, s?: string) => s ?? f + '.sig';
  const clock = o.clock ?? Date.now;
  const auditPath = cfg.auditLog ?? path.join(cfg.stateDir, 'audit.log');

  // Measurements first: a bad signature must stop the service before it creates anything.
  // The sets saved by the last run (and, with replicas, those in the store) are adopted once
  // the state dir and store are open; the file is then loaded against them (docs/rollout.md).
  const pinnedPrevious = cfg.previousMeasurements
    ? await loadReferenceSet(cfg.previousMeasurements, sigOf(cfg.previousMeasurements, cfg.previousMeasurementsSig), pub)
    : undefined;
  let audit: AuditSink | undefined;
  const rolloutMs = o.rolloutMs ?? 24 * 3600_000;
  const references = await ReferenceStore.open({
    readFile: () => readSignedMeasurements(cfg.measurements, sigOf(cfg.measurements, cfg.measurementsSig)),
    verify: (signed, name) => verifiedMeasurements(signed, pub, name === 'the measurements file' ? cfg.measurements : name),
    rolloutMs,
    pinnedPrevious,
    now: clock,
    onChange: (c) => {
      o.log?.(describe(c));
      // A forced load was audited (and durable) before it took effect.
      if (!(c.kind === 'load' && c.forced)) void audit?.append(auditOf(c), { deferred: true });
    },
    onRefused: (from, e) => {
      o.log?.(`measurements change refused, keeping the current set: ${(e as Error).message}`);
      void audit?.append({ decision: 'measurements-reload', refused: (e as Error).message, code: isSextantError(e) ? e.code : undefined, from }, { deferred: true });
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
  await openRollout(references, { stateDir: cfg.stateDir, channel: store.measurements, audit, log: o.log });
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
  const admin = await startAdminServer({ stateDir: cfg.stateDir, socket: cfg.adminSocket, replica: `${process.pid}-${addr.port}`, handle: (r) => adminAnswer(references, r, rolloutMs, () => audit) });
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
    adminSocket: admin.path,
    answer: (route, body, client) => server.answer(route, body, client),
    close: async () => {
      references.unwatch();
      await admin.close();
      await server.close();
      await selfAttestation?.dispose();
      await store.close();
      state.masterSecret.fill(0);
      state.salt.fill(0);
    },
  };
}
