/**
 * The key service over HTTPS on loopback for bench/keyservice.ts: the service in a child
 * process (one core's worth: one Node thread), simulated agents in the bench process.
 *
 *   legacy      the protocol as agents before `withNonce` speak it: /v1/nonce, round 1, round 2,
 *               each on a fresh TLS connection (three full handshakes): the baseline
 *   kept-alive  today's agent (agent/attest/client.ts): both rounds on one kept-alive
 *               connection, the nonce with the challenge, the TLS session of the node's last
 *               attestation resumed (a fresh node has none: a full handshake)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PinnedClient, TlsSessionCache, type PinnedEndpoint } from '../../agent/attest/transport.js';
import { RateLimiter } from '../../keyservice/rate-limit.js';
import { KeyServiceServer } from '../../keyservice/server.js';
import { openStateDir } from '../../keyservice/state-dir.js';
import { ROUTES } from '../../protocol/messages.js';
import { assertChallengeResponse, assertCompleteResponse, assertNonceResponse } from '../../protocol/validate.js';
import { benchAttestor, ev, round2 } from './keyservice-world.js';

const SELF = fileURLToPath(import.meta.url);

type ToChild = { id: number; blob: string } | { cpu: true };

/** Child mode: serve, tell the parent the endpoint, answer credential and CPU questions until killed. */
async function serveChild(): Promise<void> {
  const dir = await mkdtemp(path.join(process.env.BENCH_AUDIT_DIR ?? os.tmpdir(), 'ks-bench-srv-'));
  const state = await openStateDir(dir);
  const w = await benchAttestor(dir);
  const server = new KeyServiceServer({ tlsKeyPem: state.tlsKeyPem, tlsCertPem: state.tlsCertPem, nonces: w.nonces, attestor: w.attestor, limiter: new RateLimiter(1e9, 1e9), maxRequestBytes: 1 << 20 });
  const addr = await server.listen('127.0.0.1', 0);
  process.send!({ url: `https://127.0.0.1:${addr.port}`, fingerprint: state.fingerprint, dir });
  process.on('message', (m: ToChild) => {
    if ('cpu' in m) return void process.send!({ cpuUsage: process.cpuUsage() });
    process.send!({ id: m.id, secret: w.credentialFor(m.blob).toString('base64') });
  });
}

if (process.argv[1] === SELF && process.argv.includes('--serve')) await serveChild();

export type AgentKind = 'legacy' | 'kept-alive';

export class HttpsService {
  private readonly pending = new Map<number, (secret: Buffer) => void>();
  private nextId = 0;

  private constructor(
    private readonly child: ChildProcess,
    readonly ep: PinnedEndpoint,
    private readonly dir: string,
  ) {
    child.on('message', (m) => {
      const r = m as { id?: number; secret?: string };
      if (r.id === undefined) return;
      this.pending.get(r.id)?.(Buffer.from(r.secret ?? '', 'base64'));
      this.pending.delete(r.id);
    });
  }

  static async start(): Promise<HttpsService> {
    const child = fork(SELF, ['--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const info = await new Promise<{ url: string; fingerprint: string; dir: string }>((resolve) => child.once('message', (m) => resolve(m as never)));
    return new HttpsService(child, { url: info.url, fingerprint: info.fingerprint, timeoutMs: 300_000 }, info.dir);
  }

  /** The simulated agent's "ActivateCredential": the service tells it what it encrypted. */
  private credentialFor(blob: string): Promise<Buffer> {
    return new Promise((resolve) => {
      const id = this.nextId++;
      this.pending.set(id, resolve);
      this.child.send({ id, blob } satisfies ToChild);
    });
  }

  /** The service process's CPU so far, in ms. */
  cpuMs(): Promise<number> {
    return new Promise((resolve) => {
      const on = (m: unknown): void => {
        const u = (m as { cpuUsage?: NodeJS.CpuUsage }).cpuUsage;
        if (!u) return;
        this.child.off('message', on);
        resolve((u.user + u.system) / 1000);
      };
      this.child.on('message', on);
      this.child.send({ cpu: true } satisfies ToChild);
    });
  }

  /** One attestation; `sessions` is the node's TLS session cache (kept-alive agents only). */
  async attest(kind: AgentKind, i: number, sessions = new TlsSessionCache(1)): Promise<void> {
    if (kind === 'legacy') {
      const once = async (route: string, body: unknown): Promise<unknown> => {
        const c = new PinnedClient(this.ep, new TlsSessionCache(1));
        try {
          return await c.post(route, body);
        } finally {
          c.close();
        }
      };
      const n = await once(ROUTES.nonce, {});
      assertNonceResponse(n);
      const c = await once(ROUTES.challenge, { v: 1, ekCert: ev.ekCert, akPublic: ev.akPublic });
      assertChallengeResponse(c);
      assertCompleteResponse(await once(ROUTES.complete, round2(c.sessionId, await this.credentialFor(c.credentialBlob), n.nonce, i)));
      return;
    }
    const conn = new PinnedClient(this.ep, sessions);
    try {
      const c = await conn.post(ROUTES.challenge, { v: 1, ekCert: ev.ekCert, akPublic: ev.akPublic, withNonce: true });
      assertChallengeResponse(c);
      assertCompleteResponse(await conn.post(ROUTES.complete, round2(c.sessionId, await this.credentialFor(c.credentialBlob), c.nonce!, i)));
    } finally {
      conn.close();
    }
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    await new Promise((resolve) => this.child.once('exit', resolve));
    await rm(this.dir, { recursive: true, force: true });
  }
}
