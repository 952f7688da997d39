/**
 * Test scaffolding for a key service on loopback: a signing key and signed measurements
 * (signed with openssl, the cosign sign-blob format), EK CAs from real swtpms, a state dir.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { toHex } from '../../lib/bytes.js';

export interface MeasurementsFiles {
  dir: string;
  keyPem: string;
  pubPem: string;
}

export async function measurementsKeys(dir?: string): Promise<MeasurementsFiles> {
  dir ??= await mkdtemp(path.join(os.tmpdir(), 'ks-meas-'));
  const keyPem = path.join(dir, 'signing.key');
  const pubPem = path.join(dir, 'signing.pub');
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyPem]);
  await run('openssl', ['ec', '-in', keyPem, '-pubout', '-out', pubPem]);
  return { dir, keyPem, pubPem };
}

/** Writes FILE and FILE.sig (base64 DER ECDSA over SHA-256 of the exact bytes, by openssl). */
export async function writeSignedMeasurements(
  file: string,
  keyPem: string,
  pcrs: Record<string, { expected: string; enforced: boolean; events?: { type: string; digest: string; description: string; component?: string }[] }>,
  version = '1.0.0',
): Promise<void> {
  const body = JSON.stringify({ version: 1, image: { name: 'sextant-test-node', version }, bank: 'sha256', pcrs }, null, 2) + '\n';
  await writeFile(file, body);
  const sig = await run('openssl', ['dgst', '-sha256', '-sign', keyPem, file], { binary: true });
  await writeFile(file + '.sig', sig.stdoutBytes.toString('base64') + '\n');
}

/** HKDF-SHA256 computed by `openssl kdf`: the independent oracle for released keys. */
export async function opensslHkdf(ikm: Uint8Array, salt: Uint8Array, info: string): Promise<string> {
  const r = await run('openssl', ['kdf', '-keylen', '32', '-kdfopt', 'digest:SHA256', '-kdfopt', `hexkey:${toHex(ikm)}`, '-kdfopt', `hexsalt:${toHex(salt)}`, '-kdfopt', `info:${info}`, 'HKDF']);
  return r.stdout.trim().replace(/:/g, '').toLowerCase();
}

export async function readStateSecrets(stateDir: string): Promise<{ master: Buffer; salt: Buffer }> {
  return { master: await readFile(path.join(stateDir, 'master-secret')), salt: await readFile(path.join(stateDir, 'salt')) };
}

/** The documented PCR 15 lock, by openssl: SHA-256(0^32 || SHA-256(the 32 cluster ID bytes)). */
export async function opensslClusterLock(clusterIdHex: string): Promise<string> {
  const inner = await run('openssl', ['dgst', '-sha256', '-binary'], { input: Buffer.from(clusterIdHex, 'hex'), binary: true });
  const outer = await run('openssl', ['dgst', '-sha256', '-binary'], { input: Buffer.concat([Buffer.alloc(32), inner.stdoutBytes]), binary: true });
  return outer.stdoutBytes.toString('hex');
}
