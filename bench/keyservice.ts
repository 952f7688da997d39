/**
 * Key service throughput and latency on recorded real swtpm evidence
 * (test/fixtures/keyservice/evidence.json), every figure from this one run. The verification
 * path is the full one: EK chain, AK checks, MakeCredential (RSA-OAEP to the EK), credential
 * proof, ECDSA quote signature, nonce, PCR digest, event log replay, policy, HKDF, sealing
 * (ECDH + AES-GCM) and a durable (fdatasynced) audit record per decision. What is simulated:
 * bench/lib/keyservice-world.ts.
 *
 *   floor        the asymmetric crypto an attestation cannot avoid (ECDSA P-256 verify, RSA-OAEP
 *                encrypt to a 2048-bit EK, P-256 key generation + ECDH for the seal), per CPU-second
 *   in process   sequential (one at a time: each decision waits for its own fdatasync), and
 *                with IN_FLIGHT attestations at once (group commit), audit on this disk
 *   HTTPS        the service in a child process, agents here: legacy (3 requests, 3 full TLS
 *                handshakes) vs kept-alive (2 requests on one connection, nonce with the
 *                challenge, TLS session resumed): service CPU per attestation, ratio
 *   steady       arrivals at RATE per second for SECONDS (one service process: one core): p50/p99
 *   storm        STORM fresh agents (no TLS session) arriving within one second: time to serve
 *                all, p99, failures (agents retry as the agent does; latency includes retries)
 *   joins        kubelet certificates in process vs the two-openssl baseline (bench/lib/join-cert.ts)
 */
import { constants, createECDH, createSign, generateKeyPairSync, publicEncrypt, verify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ATTEST_RETRY } from '../agent/attest/client.js';
import { withRetries } from '../agent/attest/backoff.js';
import { isFinalRefusal, TlsSessionCache } from '../agent/attest/transport.js';
import { percentile, report, type Figure } from './harness.js';
import { HttpsService, type AgentKind } from './lib/keyservice-https.js';
import { joinCertRates } from './lib/join-cert.js';
import { benchAttestor, ev, round2 } from './lib/keyservice-world.js';

const env = (k: string, d: number): number => Number(process.env[k] ?? d);
const cpuSeconds = (c: NodeJS.CpuUsage): number => (c.user + c.system) / 1e6;

/** Attestations per CPU-second if the unavoidable asymmetric crypto were all an attestation cost. */
function floorRate(): { perCpuSecond: number; ecdsaVerifyPerCpuSecond: number } {
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const msg = Buffer.from(ev.quoteAttest, 'base64');
  const sig = createSign('sha256').update(msg).sign(ec.privateKey);
  const peer = createECDH('prime256v1');
  peer.generateKeys();
  const time = (n: number, f: () => void): number => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) f();
    return cpuSeconds(process.cpuUsage(c0)) / n;
  };
  const ecdsa = time(3000, () => verify('sha256', msg, ec.publicKey, sig));
  const oaep = time(3000, () => publicEncrypt({ key: rsa.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.alloc(32)));
  const seal = time(3000, () => {
    const e = createECDH('prime256v1');
    e.generateKeys();
    e.computeSecret(peer.getPublicKey());
  });
  return { perCpuSecond: 1 / (ecdsa + oaep + seal), ecdsaVerifyPerCpuSecond: 1 / ecdsa };
}

/** `n` attestations in process, `inFlight` at a time, audit on `base`'s file system. */
async function inProcess(n: number, inFlight: number, base = os.tmpdir()): Promise<{ perSecond: number; perCpuSecond: number }> {
  const dir = await mkdtemp(path.join(base, 'ks-bench-'));
  const w = await benchAttestor(dir);
  const one = async (i: number): Promise<void> => {
    const c = await w.attestor.challenge({ v: 1, ekCert: ev.ekCert, akPublic: ev.akPublic, withNonce: true }, 'bench');
    await w.attestor.complete(round2(c.sessionId, w.credentialFor(c.credentialBlob), c.nonce!, i), 'bench');
  };
  for (let i = 0; i < 50; i++) await one(i); // warm-up
  let next = 0;
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < n) await one(next++);
  }));
  const cpu = cpuSeconds(process.cpuUsage(c0));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await w.audit.close();
  await rm(dir, { recursive: true });
  return { perSecond: n / secs, perCpuSecond: n / cpu };
}

/** `agents` nodes attesting `each` times one after another: service CPU per attestation (ms). */
async function closedLoop(svc: HttpsService, kind: AgentKind, agents: number, each: number): Promise<{ cpuMs: number; failures: number }> {
  let failures = 0;
  const before = await svc.cpuMs();
  await Promise.all(Array.from({ length: agents }, async (_, a) => {
    const sessions = new TlsSessionCache(1);
    for (let k = 0; k < each; k++) await svc.attest(kind, a * each + k, sessions).catch(() => failures++);
  }));
  return { cpuMs: (await svc.cpuMs() - before) / Math.max(1, agents * each - failures), failures };
}

interface Arrivals {
  p50: number;
  p99: number;
  /** From the first arrival to the last answer. */
  wallSeconds: number;
  failures: number;
  firstFailure?: string;
}

/**
 * Open loop: `total` arrivals spread evenly over `seconds`, each one attestation, however
 * slow the service is. `sessions(i)`: the node's TLS session cache (a fresh one: no resumption).
 */
async function openLoop(svc: HttpsService, total: number, seconds: number, sessions: (i: number) => TlsSessionCache): Promise<Arrivals> {
  const latencies: number[] = [];
  let failures = 0;
  let firstFailure: string | undefined;
  const runs: Promise<void>[] = [];
  const t0 = process.hrtime.bigint();
  const elapsedMs = (): number => Number(process.hrtime.bigint() - t0) / 1e6;
  let started = 0;
  while (started < total) {
    const due = Math.min(total, Math.floor((elapsedMs() / 1000 / seconds) * total) + 1);
    for (; started < due; started++) {
      const i = started;
      const at = elapsedMs();
      // Each simulated agent retries as the agent does (ATTEST_RETRY, backoff with jitter); a failure is one that gave up.
      const attempt = (): Promise<void> => svc.attest('kept-alive', 1_000_000 + i, sessions(i));
      runs.push(withRetries(attempt, (e) => !isFinalRefusal(e), ATTEST_RETRY).then(
        () => void latencies.push(elapsedMs() - at),
        (e: unknown) => {
          failures++;
          firstFailure ??= (e as Error).message;
        },
      ));
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(runs);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), wallSeconds: elapsedMs() / 1000, failures, firstFailure };
}

const floor = floorRate();
const seq = await inProcess(env('BENCH_SEQ_N', 300), 1);
const inFlight = env('BENCH_IN_FLIGHT', 128);
const grouped = await inProcess(env('BENCH_N', 3000), inFlight);
const groupedMem = await inProcess(env('BENCH_N', 3000), inFlight, process.env.BENCH_TMPFS ?? '/dev/shm');

const svc = await HttpsService.start();
const figures: Figure[] = [];
try {
  // Warm both paths (JIT, the server's first handshakes), then measure each.
  await closedLoop(svc, 'kept-alive', 20, 3);
  await closedLoop(svc, 'legacy', 20, 3);
  const agents = env('BENCH_AGENTS', 100);
  const each = env('BENCH_EACH', 5);
  const legacy = await closedLoop(svc, 'legacy', agents, each);
  const kept = await closedLoop(svc, 'kept-alive', agents, each);
  const rate = env('BENCH_RATE', 200);
  const secs = env('BENCH_SECONDS', 10);
  // Steady arrivals: a pool of nodes that attested before (their sessions resume).
  const pool = Array.from({ length: 200 }, () => new TlsSessionCache(1));
  const steady = await openLoop(svc, rate * secs, secs, (i) => pool[i % pool.length]);
  const stormN = env('BENCH_STORM', 10_000);
  const storm = await openLoop(svc, stormN, 1, () => new TlsSessionCache(1));
  if (storm.firstFailure) process.stderr.write(`storm: first failure: ${storm.firstFailure}\n`);
  const joins = await joinCertRates();
  const s = stormN.toLocaleString('en');
  figures.push(
    { name: 'floor: asymmetric crypto per attestation, as att/CPU-s', value: floor.perCpuSecond, unit: 'att/cpu-s' },
    { name: 'in process, 1 at a time, audit fsynced: att/s', value: seq.perSecond, unit: 'att/s' },
    { name: `in process, ${inFlight} in flight, audit fsynced: att/s`, value: grouped.perSecond, unit: 'att/s' },
    { name: `attestations per CPU-second (in process, ${inFlight} in flight, audit fsynced)`, value: grouped.perCpuSecond, unit: 'att/cpu-s' },
    { name: 'attestations per CPU-second, audit on tmpfs', value: groupedMem.perCpuSecond, unit: 'att/cpu-s' },
    { name: 'ratio in process / floor', value: grouped.perCpuSecond / floor.perCpuSecond, unit: 'x' },
    { name: 'ratio in process, in flight / 1 at a time (CPU-s)', value: grouped.perCpuSecond / seq.perCpuSecond, unit: 'x' },
    { name: 'service CPU per attestation over HTTPS, legacy (3 requests, 3 handshakes)', value: legacy.cpuMs, unit: 'ms' },
    { name: 'service CPU per attestation over HTTPS (kept-alive, nonce with challenge, resumed)', value: kept.cpuMs, unit: 'ms' },
    { name: 'attestations per service CPU-second over HTTPS', value: 1000 / kept.cpuMs, unit: 'att/cpu-s' },
    { name: 'ratio HTTPS legacy / kept-alive (service CPU)', value: legacy.cpuMs / kept.cpuMs, unit: 'x' },
    { name: `steady ${rate}/s for ${secs} s, 1 service core: p50`, value: steady.p50, unit: 'ms' },
    { name: `steady ${rate}/s for ${secs} s, 1 service core: p99`, value: steady.p99, unit: 'ms' },
    { name: `steady ${rate}/s: failures`, value: steady.failures + legacy.failures + kept.failures, unit: '' },
    { name: `storm: ${s} fresh agents within 1 s: time to serve all`, value: storm.wallSeconds, unit: 's' },
    { name: `storm: ${s} fresh agents: p50`, value: storm.p50, unit: 'ms' },
    { name: `storm: ${s} fresh agents: p99`, value: storm.p99, unit: 'ms' },
    { name: `storm: ${s} fresh agents: failures`, value: storm.failures, unit: '' },
    { name: 'joins per CPU-second (kubelet certificate in process)', value: joins.inProcessPerCpuSecond, unit: 'join/cpu-s' },
    { name: 'joins per CPU-second, baseline: 2 openssl + temp dir', value: joins.opensslPerCpuSecond, unit: 'join/cpu-s' },
    { name: 'ratio joins in process / openssl', value: joins.inProcessPerCpuSecond / joins.opensslPerCpuSecond, unit: 'x' },
    { name: 'node:crypto ECDSA P-256 verify per CPU-second', value: floor.ecdsaVerifyPerCpuSecond, unit: 'verify/cpu-s' },
  );
} finally {
  await svc.stop();
}
report('keyservice', figures);
