import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hash, toHex } from '../lib/bytes.js';
import { SextantError } from '../lib/errors.js';
import { run, type ExecLogger } from '../lib/exec.js';

/**
 * The key service's state directory. Only the master secret and salt matter for the keys it
 * releases (everything else is derived); the TLS key pair is generated once so agents can
 * pin its fingerprint.
 *
 *   master-secret   32 random bytes, raw, 0600
 *   salt            32 random bytes, raw, 0600
 *   tls-key.pem     P-256 key, 0600;  tls-cert.pem  self-signed, CN=sextant-keyservice
 *   tls-fingerprint `sha256:<hex SHA-256 of the DER certificate>`
 *   audit.log       hash-chained decisions (+ audit.log.head)
 */

export interface ServiceState {
  dir: string;
  masterSecret: Buffer;
  salt: Buffer;
  tlsKeyPem: string;
  tlsCertPem: string;
  fingerprint: string;
  /** Files this start created (empty on a restart). */
  created: string[];
}

export const SECRET_BYTES = 32;

export function certFingerprint(certPem: string | Buffer): string {
  const der = new X509Certificate(certPem).raw;
  return 'sha256:' + toHex(hash('sha256', der));
}

/** Reads a raw secret file, creating it with fresh random bytes (0600) if absent. */
async function secretFile(file: string, created: string[]): Promise<Buffer> {
  try {
    const fh = await open(file, 'wx', 0o600);
    const b = randomBytes(SECRET_BYTES);
    try {
      await fh.write(b);
      await fh.sync();
    } finally {
      await fh.close();
    }
    created.push(path.basename(file));
    return b;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new SextantError({ code: 'IO_FAILED', message: `cannot create ${file}`, cause: e });
  }
  return readSecretFile(file);
}

/**
 * Refuses a secret (or the directory holding them) that group or others can reach: the
 * message names the path, its mode and the command that fixes it. One check for every
 * secret the key service reads: master secret, salt, TLS key, the state directory.
 */
export function assertPrivate(file: string, mode: number, kind: 'file' | 'directory' = 'file'): void {
  if ((mode & 0o077) === 0) return;
  const shown = (mode & 0o777).toString(8).padStart(4, '0');
  const fix = kind === 'file' ? `chmod 600 ${file}` : `chmod 700 ${file}`;
  throw new SextantError({ code: 'CONFIG_INVALID', message: `${file} is readable by group or others (mode ${shown}); fix: ${fix}` });
}

async function statOrMissing(file: string) {
  try {
    return await stat(file);
  } catch (cause) {
    throw new SextantError({ code: 'FILE_NOT_FOUND', message: `cannot read ${file}`, cause });
  }
}

/** Reads a secret file that must exist and be private to its owner (0600 or stricter). */
export async function readPrivateFile(file: string): Promise<Buffer> {
  assertPrivate(file, (await statOrMissing(file)).mode);
  return readFile(file);
}

/**
 * Reads a 32-byte raw secret (master secret or salt) that must exist and be private to its
 * owner; `sextant recover` reads the key service's files with it.
 */
export async function readSecretFile(file: string): Promise<Buffer> {
  const b = await readPrivateFile(file);
  if (b.length !== SECRET_BYTES) {
    throw new SextantError({ code: 'CONFIG_INVALID', message: `${file} must hold exactly ${SECRET_BYTES} raw bytes, has ${b.length}` });
  }
  return b;
}

async function exists(f: string): Promise<boolean> {
  return stat(f).then(
    () => true,
    () => false,
  );
}

async function ensureTls(dir: string, created: string[], log?: ExecLogger, sans: string[] = ['IP:127.0.0.1', 'DNS:localhost']): Promise<{ key: string; cert: string }> {
  const keyFile = path.join(dir, 'tls-key.pem');
  const certFile = path.join(dir, 'tls-cert.pem');
  if (!(await exists(keyFile)) || !(await exists(certFile))) {
    const tmpKey = keyFile + '.tmp';
    await rm(tmpKey, { force: true });
    // openssl writes the key with the umask; pre-create it 0600 so it is never world-readable.
    await writeFile(tmpKey, '', { mode: 0o600 });
    await run(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmpKey, '-out', certFile,
        '-subj', '/CN=sextant-keyservice', '-days', '3650', '-addext', `subjectAltName=${sans.join(',')}`],
      { log },
    );
    await rename(tmpKey, keyFile);
    created.push('tls-key.pem', 'tls-cert.pem');
  }
  return { key: (await readPrivateFile(keyFile)).toString('utf8'), cert: await readFile(certFile, 'utf8') };
}

/** Creates what is missing and loads everything; idempotent. */
export async function openStateDir(dir: string, opts: { log?: ExecLogger; tls?: { keyFile: string; certFile: string } } = {}): Promise<ServiceState> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // The directory too: a listable state directory shows which secrets exist and when they change.
  assertPrivate(dir, (await stat(dir)).mode, 'directory');
  const created: string[] = [];
  const masterSecret = await secretFile(path.join(dir, 'master-secret'), created);
  const salt = await secretFile(path.join(dir, 'salt'), created);
  const tls = opts.tls
    ? { key: (await readPrivateFile(opts.tls.keyFile)).toString('utf8'), cert: await readFile(opts.tls.certFile, 'utf8') }
    : await ensureTls(dir, created, opts.log);
  const fingerprint = certFingerprint(tls.cert);
  await writeFile(path.join(dir, 'tls-fingerprint'), fingerprint + '\n');
  return { dir, masterSecret, salt, tlsKeyPem: tls.key, tlsCertPem: tls.cert, fingerprint, created };
}
