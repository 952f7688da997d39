/**
 * A real `sextant keyservice` process to attack: signed measurements, an EK CA made with
 * openssl (no request in these tests gets past round 1's certificate check anyway), a
 * config file so the rate limit can be raised for floods. Unauthenticated attackers are
 * what these tests play, so no TPM is needed.
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { measurementsKeys, writeSignedMeasurements } from './keyservice-fixture.js';
import { spawnKeyService, type KeyServiceChild } from './keyservice-process.js';
import { readConfigFile, resolveConfig } from '../../keyservice/config.js';
import { startKeyService, type RunningKeyService } from '../../keyservice/service.js';

export interface KeyServiceTarget {
  service: KeyServiceChild;
  dir: string;
  stateDir: string;
  auditLog: string;
  /** The audit log's size now (bytes). */
  auditBytes(): Promise<number>;
  /** True while the process has not exited. */
  alive(): boolean;
  stop(): Promise<void>;
}

export interface TargetOptions {
  rateLimit?: { burst: number; perSecond: number };
  maxRequestBytes?: number;
  /** Where the state (and its audit log) lives; default the OS temp dir. */
  tmp?: string;
}

/** Writes the key service's files and config into a new directory; returns both paths. */
export async function writeTargetFiles(o: TargetOptions = {}): Promise<{ dir: string; config: string; stateDir: string }> {
  const dir = await mkdtemp(path.join(o.tmp ?? os.tmpdir(), 'ks-target-'));
  const keys = await measurementsKeys(dir);
  const measurements = path.join(dir, 'measurements.json');
  await writeSignedMeasurements(measurements, keys.keyPem, { '4': { expected: '00'.repeat(32), enforced: true } });
  const ca = path.join(dir, 'ek-ca.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'ek-ca.key'), '-out', ca, '-subj', '/CN=hostile-test-ek-ca', '-days', '2']);
  const stateDir = path.join(dir, 'state');
  const config = path.join(dir, 'keyservice.json');
  await writeFile(
    config,
    JSON.stringify({
      stateDir,
      measurements,
      measurementsKey: keys.pubPem,
      ekCa: [ca],
      rateLimit: o.rateLimit ?? { burst: 100_000, perSecond: 100_000 },
      ...(o.maxRequestBytes ? { maxRequestBytes: o.maxRequestBytes } : {}),
    }),
  );
  return { dir, config, stateDir };
}

/** The same service in this process (its `answer` is the handler the fuzz campaigns call). */
export async function startInProcessTarget(o: TargetOptions = {}): Promise<{ svc: RunningKeyService; stop(): Promise<void> }> {
  const { dir, config } = await writeTargetFiles(o);
  const svc = await startKeyService(resolveConfig(await readConfigFile(config), { listen: '127.0.0.1:0' }));
  return {
    svc,
    stop: async () => {
      await svc.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function startKeyServiceTarget(o: TargetOptions = {}): Promise<KeyServiceTarget> {
  const { dir, config, stateDir } = await writeTargetFiles(o);
  const service = await spawnKeyService(['--config', config, '--listen', '127.0.0.1:0']);
  let exited = false;
  void service.child.then(() => (exited = true));
  const auditLog = path.join(stateDir, 'audit.log');
  return {
    service,
    dir,
    stateDir,
    auditLog,
    auditBytes: async () => (await stat(auditLog)).size,
    alive: () => !exited && service.child.exitCode === null,
    stop: async () => {
      await service.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
