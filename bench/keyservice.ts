/**
 * Key service throughput and latency on recorded real swtpm evidence
 * (test/fixtures/keyservice/evidence.json). The verification path is the full one: EK chain,
 * AK checks, MakeCredential (RSA-OAEP to the EK), credential proof, ECDSA quote signature,
 * nonce, PCR digest, event log replay, policy, HKDF, sealing (ECDH + AES-GCM) and an fsynced
 * audit record per decision. Only the nonce is the recorded one, re-issued per attestation
 * (the quote is bound to it), and the simulated agent echoes the credential the service made
 * (a TPM's ActivateCredential is the agent's cost, not the service's).
 *
 *   1. attestations/s in-process on one core (sequential: one thread does all the work)
 *   2. p50/p99 latency with 1,000 concurrent simulated agents over HTTPS on loopback
 *      (the service in a child process: one core for it, the agents in this process)
 *   3. raw node:crypto ECDSA P-256 verify/s, and the ratio
 */
import { createSign, generateKeyPairSync, verify, X509Certificate } from 'node:crypto';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeyServiceAttestor } from '../keyservice/attestor.js';
import { AuditLog } from '../keyservice/audit/log.js';
import { NonceStore } from '../keyservice/nonce-store.js';
import { RateLimiter } from '../keyservice/rate-limit.js';
import { KeyServiceServer } from '../keyservice/server.js';
import { openStateDir } from '../keyservice/state-dir.js';
import { replaySha256 } from '../keyservice/service.js';
import { codecTpmChecks } from '../attestation/tpm/codec-checks.js';
import type { TpmChecks } from '../attestation/tpm/checks.js';
import { postJson, type PinnedEndpoint } from '../agent/attest/transport.js';
import { ROUTES, type CompleteRequest } from '../protocol/messages.js';
import { assertChallengeResponse } from '../protocol/validate.js';
import { percentile, report } from './harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const EVIDENCE = path.resolve(here, '../../test/fixtures/keyservice/evidence.json');

interface Evidence {
  ekCert: string;
  ekRoot: string;
  ekIssuer: string;
  akPublic: string;
  nonce: string;
  ephemeralPublicKey: string;
  quoteAttest: string;
  quoteSignature: string;
  pcrs: Record<string, string>;
  eventLog: string;
}

const ev = JSON.parse(await readFile(EVIDENCE, 'utf8')) as Evidence;
/** Credential blob (base64) -> the secret inside, for the simulated agents (child mode). */
const credentials = new Map<string, string>();

/**
 * Concurrent agents all replay the same recorded quote, so they share one nonce: for the
 * HTTPS run the single-use check (one Map lookup) accepts it every time. The sequential
 * in-process run uses the real store (issue, then consume once).
 */
class RecordedNonceStore extends NonceStore {
  override consume(): void {}
}

async function makeAttestor(dir: string, concurrent = false): Promise<{ attestor: KeyServiceAttestor; nonces: NonceStore; audit: AuditLog; lastCredential: () => Buffer }> {
  const audit = await AuditLog.open(path.join(dir, 'audit.log'));
  const opts = { random: () => Buffer.from(ev.nonce, 'base64'), maxEntries: 1_000_000 };
  const nonces = concurrent ? new RecordedNonceStore(opts) : new NonceStore(opts);
  let last: Buffer | undefined;
  const capture: TpmChecks = {
    ...codecTpmChecks,
    makeCredential: (ek, name, secret) => {
      last = Buffer.from(secret);
      const r = codecTpmChecks.makeCredential(ek, name, secret);
      credentials.set(r.credentialBlob.toString('base64'), last.toString('base64'));
      return r;
    },
  };
  const attestor = new KeyServiceAttestor({
    ekCas: [new X509Certificate(ev.ekRoot), new X509Certificate(ev.ekIssuer)],
    tpm: capture,
    nonces,
    references: () => [{ label: 'bench', pcrs: { '4': { expected: ev.pcrs['4'], enforced: true }, '9': { expected: ev.pcrs['9'], enforced: true } } }],
    masterSecret: Buffer.alloc(32, 7),
    salt: Buffer.alloc(32, 8),
    audit,
    replayEventLog: replaySha256,
    maxSessions: 1_000_000,
  });
  return { attestor, nonces, audit, lastCredential: () => last! };
}

function round2(sessionId: string, credential: Buffer, i: number): CompleteRequest {
  return {
    v: 1,
    sessionId,
    activatedCredential: credential.toString('base64'),
    nonce: ev.nonce,
    ephemeralPublicKey: ev.ephemeralPublicKey,
    quoteAttest: ev.quoteAttest,
    quoteSignature: ev.quoteSignature,
    pcrs: ev.pcrs,
    eventLog: ev.eventLog,
    diskUuid: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    role: 'join',
    nodeName: 'bench-node',
  };
}

/** Child mode: serve over HTTPS for the latency run, print the endpoint, run until killed. */
async function serveChild(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-bench-srv-'));
  const state = await openStateDir(dir);
  const { attestor, nonces } = await makeAttestor(dir, true);
  const server = new KeyServiceServer({ tlsKeyPem: state.tlsKeyPem, tlsCertPem: state.tlsCertPem, nonces, attestor, limiter: new RateLimiter(1e9, 1e9), maxRequestBytes: 1 << 20 });
  const addr = await server.listen('127.0.0.1', 0);
  process.send!({ url: `https://127.0.0.1:${addr.port}`, fingerprint: state.fingerprint, dir });
  // A simulated agent cannot run ActivateCredential: it asks (IPC) for the secret in its blob.
  process.on('message', (m: { id: number; blob: string } | { cpu: true }) => {
    if ('cpu' in m) return void process.send!({ cpuUsage: process.cpuUsage() });
    process.send!({ id: m.id, secret: credentials.get(m.blob) ?? '' });
    credentials.delete(m.blob);
  });
}

async function inProcessRate(base = os.tmpdir()): Promise<{ perSecond: number; perCpuSecond: number; n: number }> {
  const dir = await mkdtemp(path.join(base, 'ks-bench-'));
  const { attestor, nonces, audit, lastCredential } = await makeAttestor(dir);
  const run = async (i: number): Promise<void> => {
    nonces.issue();
    const c = await attestor.challenge({ v: 1, ekCert: ev.ekCert, akPublic: ev.akPublic }, 'bench');
    await attestor.complete(round2(c.sessionId, lastCredential(), i), 'bench');
  };
  for (let i = 0; i < 20; i++) await run(i); // warm-up
  const n = Number(process.env.BENCH_N ?? 400);
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await run(i);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  await audit.close();
  await rm(dir, { recursive: true });
  return { perSecond: n / secs, perCpuSecond: n / ((cpu.user + cpu.system) / 1e6), n };
}

async function concurrentLatency(agents: number): Promise<{ p50: number; p99: number; wall: number; failures: number; serviceCpuPerAttestationMs: number }> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const info = await new Promise<{ url: string; fingerprint: string; dir: string }>((resolve) => child.once('message', (m) => resolve(m as never)));
  const ep: PinnedEndpoint = { url: info.url, fingerprint: info.fingerprint, timeoutMs: 120_000 };
  const latencies: number[] = [];
  let failures = 0;
  const pending = new Map<number, (secret: Buffer) => void>();
  let nextId = 0;
  child.on('message', (m) => {
    const r = m as { id?: number; secret?: string };
    if (r.id !== undefined) pending.get(r.id)?.(Buffer.from(r.secret ?? '', 'base64'));
    if (r.id !== undefined) pending.delete(r.id);
  });
  const credentialFor = (blob: string): Promise<Buffer> =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      child.send({ id, blob });
    });
  const agent = async (i: number): Promise<void> => {
    const t0 = process.hrtime.bigint();
    try {
      await postJson(ep, ROUTES.nonce, {});
      const c = await postJson(ep, ROUTES.challenge, { v: 1, ekCert: ev.ekCert, akPublic: ev.akPublic });
      assertChallengeResponse(c);
      const credential = await credentialFor(c.credentialBlob);
      await postJson(ep, ROUTES.complete, round2(c.sessionId, credential, i));
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    } catch (e) {
      if (failures++ === 0) process.stderr.write(`first failure: ${(e as Error).message}\n`);
    }
  };
  const cpuOf = (): Promise<number> =>
    new Promise((resolve) => {
      const on = (m: unknown): void => {
        const u = (m as { cpuUsage?: NodeJS.CpuUsage }).cpuUsage;
        if (!u) return;
        child.off('message', on);
        resolve((u.user + u.system) / 1000);
      };
      child.on('message', on);
      child.send({ cpu: true });
    });
  const cpuBefore = await cpuOf();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: agents }, (_, i) => agent(i)));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const serviceCpuPerAttestationMs = (await cpuOf() - cpuBefore) / Math.max(1, agents - failures);
  child.kill('SIGTERM');
  await rm(info.dir, { recursive: true, force: true });
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), wall, failures, serviceCpuPerAttestationMs };
}

function rawEcdsaVerifyRate(): { wall: number; cpu: number } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const msg = Buffer.from(ev.quoteAttest, 'base64');
  const sig = createSign('sha256').update(msg).sign(privateKey);
  const n = 5000;
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) verify('sha256', msg, publicKey, sig);
  const cpu = process.cpuUsage(c0);
  return { wall: n / (Number(process.hrtime.bigint() - t0) / 1e9), cpu: n / ((cpu.user + cpu.system) / 1e6) };
}

if (process.argv.includes('--serve')) {
  await serveChild();
} else {
  const rate = await inProcessRate();
  // The same on tmpfs: what the CPU does, without the disk's fsync latency.
  const rateMem = await inProcessRate(process.env.BENCH_TMPFS ?? '/dev/shm');
  const agents = Number(process.env.BENCH_AGENTS ?? 1000);
  const lat = await concurrentLatency(agents);
  const a = agents.toLocaleString('en');
  const ecdsa = rawEcdsaVerifyRate();
  report('keyservice', [
    { name: 'attestations/s, 1 core, audit fsynced to disk', value: rate.perSecond, unit: 'att/s' },
    { name: 'attestations/s, 1 core, audit on tmpfs', value: rateMem.perSecond, unit: 'att/s' },
    { name: 'attestations per CPU-second (service work only)', value: rateMem.perCpuSecond, unit: 'att/cpu-s' },
    { name: `${a} concurrent agents over HTTPS: p50`, value: lat.p50, unit: 'ms' },
    { name: `${a} concurrent agents over HTTPS: p99`, value: lat.p99, unit: 'ms' },
    { name: `${a} concurrent agents: wall time`, value: lat.wall, unit: 's' },
    { name: `${a} concurrent agents: failures`, value: lat.failures, unit: '' },
    { name: 'service CPU per attestation over HTTPS (3 TLS handshakes)', value: lat.serviceCpuPerAttestationMs, unit: 'ms' },
    { name: 'node:crypto ECDSA P-256 verify/s (wall)', value: ecdsa.wall, unit: 'verify/s' },
    { name: 'node:crypto ECDSA P-256 verify per CPU-second', value: ecdsa.cpu, unit: 'verify/cpu-s' },
    { name: 'ratio ECDSA verify / attestation (CPU-seconds)', value: ecdsa.cpu / rateMem.perCpuSecond, unit: 'x' },
  ]);
}
