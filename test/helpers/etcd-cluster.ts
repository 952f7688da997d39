import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freeLoopbackPort as freePort } from '../../mini/keyservice.js';

/**
 * A real etcd cluster (Debian's etcd-server, `etcd` on PATH) of N members on loopback: free
 * ports, data directories in a temporary directory, every member a child process started and
 * stopped by its PID. Members can be killed (-9) and started again on their data directory.
 * Election timing is shortened (heartbeat 50 ms, election 500 ms) so that a lost member
 * is noticed in well under a second; fsync stays on (acknowledged writes must survive).
 */

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

export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  const root = await mkdtemp(path.join(tmpdir(), 'sextant-etcd-'));
  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) {
    members.push({ name: `m${i}`, clientUrl: `http://127.0.0.1:${await freePort()}`, peerUrl: `http://127.0.0.1:${await freePort()}`, dataDir: path.join(root, `m${i}`), log: [] });
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
        const r = await fetch(`${m.clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
        if (r.ok && ((await r.json()) as { health?: string }).health === 'true') return;
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
