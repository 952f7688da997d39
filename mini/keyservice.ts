/**
 * The key service as an operator runs it, for local nodes: `sextant keyservice` as its own
 * process on the host's loopback (it outlives the command that started it), with the image's
 * measurements signed by a throwaway key, a TLS certificate naming the address the guests
 * dial, and a throwaway cluster CA for join tickets.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../lib/exec.js';
import { SextantError } from '../lib/errors.js';
import { readAuditRecords } from '../keyservice/audit/log.js';
import { isSameProcess, recordProcess, stopProcess, type ProcessRecord } from './proc.js';
import { SEXTANT_BIN } from './paths.js';
import type { Log } from './swtpm.js';

/** Where the guest reaches the key service: a guestfwd address (QEMU refuses one on 10.0.2.2 with restrict=on). */
export const GUEST_KEYSERVICE_ADDR = '10.0.2.100';
export const GUEST_KEYSERVICE_PORT = 8443;
export const GUEST_KEYSERVICE_URL = `https://${GUEST_KEYSERVICE_ADDR}:${GUEST_KEYSERVICE_PORT}`;

export interface KeyServiceFiles {
  measurements: string;
  measurementsKey: string;
  /** The throwaway signing key (0600) when the measurements were re-signed here: a rollout signs the next image's with it. */
  measurementsSignKey?: string;
  tlsCert: string;
  tlsKey: string;
  /** --config: the join ticket settings (a throwaway cluster CA; the API server address is never dialled). */
  config: string;
}

/** A P-256 key pair in PEM files (the private one 0600). */
export async function makeSigningKey(key: string, pub: string, log?: Log): Promise<void> {
  await writeFile(key, '', { mode: 0o600 });
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], { log });
  await run('openssl', ['ec', '-in', key, '-pubout', '-out', pub], { log });
}

/** `<file>.sig` as `sextant measurements sign` writes it: base64 DER ECDSA P-256 over SHA-256. */
export async function signFile(file: string, key: string, log?: Log): Promise<void> {
  const sig = await run('openssl', ['dgst', '-sha256', '-sign', key, file], { binary: true, log });
  await writeFile(file + '.sig', sig.stdoutBytes.toString('base64') + '\n');
}

/**
 * The image's measurements.json signed with a throwaway key (an image may come without its
 * signer's public key), and a TLS certificate naming the address the guest dials.
 */
export async function keyServiceFiles(imageDir: string, dir: string, o: { measurementsKey?: string; log?: Log } = {}): Promise<KeyServiceFiles> {
  await mkdir(dir, { recursive: true });
  let measurements = path.join(imageDir, 'measurements.json');
  let measurementsKey = o.measurementsKey;
  let measurementsSignKey: string | undefined;
  if (!measurementsKey) {
    measurementsSignKey = path.join(dir, 'measurements-sign.key');
    measurementsKey = path.join(dir, 'measurements-sign.pub');
    await makeSigningKey(measurementsSignKey, measurementsKey, o.log);
    const copy = path.join(dir, 'measurements.json');
    await copyFile(measurements, copy);
    await signFile(copy, measurementsSignKey, o.log);
    measurements = copy;
  }
  const tlsKey = path.join(dir, 'tls-key.pem');
  const tlsCert = path.join(dir, 'tls-cert.pem');
  await writeFile(tlsKey, '', { mode: 0o600 });
  await run(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tlsKey, '-out', tlsCert, '-subj', '/CN=sextant-keyservice',
      '-days', '30', '-addext', `subjectAltName=IP:${GUEST_KEYSERVICE_ADDR},IP:127.0.0.1`],
    { log: o.log },
  );
  const caKey = path.join(dir, 'cluster-ca.key');
  const caCert = path.join(dir, 'cluster-ca.crt');
  await writeFile(caKey, '', { mode: 0o600 });
  await run(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caCert, '-subj', '/CN=kubernetes', '-days', '30',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    { log: o.log },
  );
  const config = path.join(dir, 'keyservice.json');
  await writeFile(config, JSON.stringify({ nonceTtlSeconds: 300, join: { apiServerEndpoint: '10.0.2.2:6443', caCert, caKey } }, null, 2) + '\n');
  return { measurements, measurementsKey, measurementsSignKey, tlsCert, tlsKey, config };
}

export interface KeyServiceProcess {
  pid: number;
  /** PID, start time and the marker (its state folder) that identify it later. */
  record: ProcessRecord;
  port: number;
  fingerprint: string;
  clusterId: string;
  stateDir: string;
  auditLog: string;
  /** Its stdout (the start line) and stderr (its log). */
  stdoutFile: string;
  stderrFile: string;
  stop(): Promise<void>;
}

export interface StartKeyServiceOptions {
  port: number;
  stateDir: string;
  files: KeyServiceFiles;
  ekCa: string[];
  /** More `sextant keyservice` flags (e.g. --previous-measurements FILE for a rollout). */
  extraArgs?: string[];
  log?: Log;
}

/**
 * `sextant keyservice` on 127.0.0.1:port in its own session (a Ctrl-C of the caller does not
 * reach it, and it goes on after the caller exits); resolves once it prints its start record.
 */
export async function startKeyServiceProcess(o: StartKeyServiceOptions): Promise<KeyServiceProcess> {
  const stateDir = path.resolve(o.stateDir);
  const runDir = path.dirname(stateDir);
  // The key service refuses a state folder others can read (its master secret lives there).
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const stdoutFile = path.join(runDir, 'keyservice.stdout');
  const stderrFile = path.join(runDir, 'keyservice.log');
  const args = [SEXTANT_BIN, 'keyservice', '--config', o.files.config, '--listen', `127.0.0.1:${o.port}`, '--state-dir', stateDir, '--measurements', o.files.measurements,
    '--measurements-key', o.files.measurementsKey, '--tls-cert', o.files.tlsCert, '--tls-key', o.files.tlsKey, '--require-event-log', '--json',
    ...o.ekCa.flatMap((c) => ['--ek-ca', c]), ...(o.extraArgs ?? [])];
  o.log?.(`+ node ${args.join(' ')}`);
  const out = await open(stdoutFile, 'w');
  const err = await open(stderrFile, 'a');
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out.fd, err.fd] });
  await out.close();
  await err.close();
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  child.once('error', () => (exited = -1));
  const pid = child.pid;
  if (pid === undefined) throw new SextantError({ code: 'EXEC_FAILED', message: `could not start ${process.execPath} ${SEXTANT_BIN} keyservice` });
  const record = recordProcess(pid, stateDir);
  const stop = async (): Promise<void> => {
    await stopProcess(record);
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const text = await readFile(stdoutFile, 'utf8').catch(() => '');
    const nl = text.indexOf('\n');
    if (nl >= 0) {
      const started = JSON.parse(text.slice(0, nl)) as { ok?: boolean; fingerprint: string; clusterId: string; code?: string; message?: string };
      if (started.ok !== true) {
        await stop();
        throw new SextantError({ code: 'EXEC_FAILED', message: `the key service refused to start: ${String(started.code)}: ${String(started.message)}` });
      }
      child.unref();
      return { pid, record, port: o.port, fingerprint: started.fingerprint, clusterId: started.clusterId, stateDir, auditLog: path.join(stateDir, 'audit.log'), stdoutFile, stderrFile, stop };
    }
    if (exited !== undefined) {
      const tail = (await readFile(stderrFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join(' | ');
      throw new SextantError({ code: 'EXEC_FAILED', message: `the key service exited with ${String(exited)} before it started: ${tail}` });
    }
    if (Date.now() > deadline) break;
    await sleep(100);
  }
  await stop();
  throw new SextantError({ code: 'TIMEOUT', message: `the key service did not print its start record within 60 s (see ${stderrFile})` });
}

/** True while the recorded key service still runs. */
export function keyServiceRunning(r: ProcessRecord): boolean {
  return isSameProcess(r);
}

export interface AuditRecordLike {
  seq: number;
  time: string;
  decision: string;
  [k: string]: unknown;
}

/** The key service's audit records, evidence (quoted PCRs, event log) resolved; [] before the first. */
export async function readAuditLog(file: string): Promise<AuditRecordLike[]> {
  return readAuditRecords(file).catch((e: unknown) => {
    if ((e as { code?: string }).code === 'FILE_NOT_FOUND') return [];
    throw e;
  });
}

/** A loopback port nobody listens on right now (for a key service started later). */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** True when nothing listens on 127.0.0.1:port. */
export async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
