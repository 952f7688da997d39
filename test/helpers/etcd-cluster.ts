import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freeLoopbackPort as freePort } from '../../mini/keyservice.js';

/**
 * A real etcd cluster (Debian's etcd-server, `etcd` on PATH) of N members on loopback: free
 * ports, data directories in a temporary directory, every member a child process started and
 * stopped by its PID. Members can be killed (-9) and started again on their data directory.
 * Election timing is shortened (heartbeat 50 ms, election 500 ms) so that a lost member
 * is noticed in well under a second; fsync stays on (acknowledged writes must survive).
 * With `tls` the client port is https only (`--cert-file`, `--key-file`) and, with
 * `clientCertAuth`, asks every client for a certificate signed by `trustedCa`
 * (`--client-cert-auth --trusted-ca-file`); the peer port stays plain http on loopback.
 */

export interface EtcdTls {
  cert: string;
  key: string;
  /** The CA client certificates must chain to (with clientCertAuth), and the one health checks trust. */
  trustedCa: string;
  clientCertAuth?: boolean;
  /** The client certificate the health check presents (with clientCertAuth). */
  clientCert?: string;
  clientKey?: string;
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  child?: ChildProcess;
  /** The member's stderr (etcd logs there), for a failing test's message. */
  log: string[];
}

export interface EtcdCluster {
  endpoints: string[];
  members: EtcdMember[];
  /** SIGKILL (default) or SIGTERM one member, by its PID; resolves when it has exited. */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped member again on its data directory and waits until it serves. */
  start(i: number): Promise<void>;
  /** Waits until `/health` of member i says true (it sees a leader and can commit). */
  healthy(i: number, timeoutMs?: number): Promise<void>;
  /** Stops every member and removes the data directories. */
  stop(): Promise<void>;
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
}

/** GET url (http or https with the cluster's CA and client certificate), its JSON body. */
async function getJson(url: string, tls?: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<unknown> {
  if (!url.startsWith('https:')) {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return r.ok ? r.json() : undefined;
  }
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : resolve(undefined)));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export async function startEtcdCluster(size = 3, o: { tls?: EtcdTls } = {}): Promise<EtcdCluster> {
  const root = await mkdtemp(path.join(tmpdir(), 'sextant-etcd-'));
  const members: EtcdMember[] = [];
  const scheme = o.tls ? 'https' : 'http';
  const tlsArgs = o.tls ? ['--cert-file', o.tls.cert, '--key-file', o.tls.key, ...(o.tls.clientCertAuth ? ['--client-cert-auth', '--trusted-ca-file', o.tls.trustedCa] : [])] : [];
  const healthTls = o.tls && { ca: await readFile(o.tls.trustedCa), ...(o.tls.clientCert && { cert: await readFile(o.tls.clientCert), key: await readFile(o.tls.clientKey!) }) };
  for (let i = 0; i < size; i++) {
    members.push({ name: `m${i}`, clientUrl: `${scheme}://127.0.0.1:${await freePort()}`, peerUrl: `http://127.0.0.1:${await freePort()}`, dataDir: path.join(root, `m${i}`), log: [] });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const launch = (m: EtcdMember, state: 'new' | 'existing') => {
    const child = spawn(
      'etcd',
      [
        '--name', m.name, '--data-dir', m.dataDir,
        '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
        '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
        '--initial-cluster', initialCluster, '--initial-cluster-token', path.basename(root), '--initial-cluster-state', state,
        ...tlsArgs,
        '--heartbeat-interval', '50', '--election-timeout', '500',
        '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr!.on('data', (c: Buffer) => {
      m.log.push(c.toString());
      if (m.log.length > 200) m.log.shift();
    });
    m.child = child;
  };
  const healthy = async (i: number, timeoutMs = 15_000) => {
    const m = members[i];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        if (((await getJson(`${m.clientUrl}/health`, healthTls)) as { health?: string } | undefined)?.health === 'true') return;
      } catch {
        /* not up yet */
      }
      if (m.child && (m.child.exitCode !== null || m.child.signalCode !== null)) throw new Error(`etcd ${m.name} exited: ${m.log.join('').slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`etcd ${m.name} not healthy after ${timeoutMs} ms: ${m.log.join('').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const cluster: EtcdCluster = {
    endpoints: members.map((m) => m.clientUrl),
    members,
    healthy,
    kill: async (i, signal = 'SIGKILL') => {
      const c = members[i].child;
      if (!c) return;
      process.kill(c.pid!, signal);
      await exited(c);
      members[i].child = undefined;
    },
    start: async (i) => {
      if (members[i].child) return;
      launch(members[i], 'existing');
      await healthy(i);
    },
    stop: async () => {
      await Promise.all(members.map((_, i) => cluster.kill(i, 'SIGKILL')));
      await rm(root, { recursive: true, force: true });
    },
  };
  try {
    for (const m of members) launch(m, 'new');
    await Promise.all(members.map((_, i) => healthy(i)));
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}
