import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { run } from '../../lib/exec.js';

/** Helpers for the measurements-file tests (format, sign, verify, constellation). */

export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sextant-mfile-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** An ECDSA key pair made by openssl exactly as the README tells users to. */
export async function opensslKeyPair(dir: string, name = 'key', curve = 'prime256v1'): Promise<{ key: string; pub: string }> {
  const key = path.join(dir, `${name}.pem`);
  const pub = path.join(dir, `${name}.pub.pem`);
  await run('openssl', ['ecparam', '-genkey', '-name', curve, '-out', key]);
  await run('openssl', ['pkey', '-in', key, '-pubout', '-out', pub]);
  return { key, pub };
}

/** Any other key type openssl makes (rsa, ed25519), with its public half. */
export async function opensslOtherKey(dir: string, algorithm: string, name: string): Promise<{ key: string; pub: string }> {
  const key = path.join(dir, `${name}.pem`);
  const pub = path.join(dir, `${name}.pub.pem`);
  const opts = algorithm === 'RSA' ? ['-pkeyopt', 'rsa_keygen_bits:2048'] : [];
  await run('openssl', ['genpkey', '-algorithm', algorithm, ...opts, '-out', key]);
  await run('openssl', ['pkey', '-in', key, '-pubout', '-out', pub]);
  return { key, pub };
}

/** H(old || digest) from zero, written out here so the tests do not trust extend.ts. */
export function replaySha256(digestsHex: string[]): string {
  let pcr = Buffer.alloc(32);
  for (const d of digestsHex) pcr = createHash('sha256').update(pcr).update(Buffer.from(d, 'hex')).digest();
  return pcr.toString('hex');
}

export const sha256Hex = (s: string | Uint8Array): string => createHash('sha256').update(s).digest('hex');

/**
 * A realistic measurements file: PCR 11 as systemd-stub measures sections (H(name+NUL),
 * H(data)), PCR 12 empty, PCR 4 warn-only without a manifest.
 */
export function sampleMeasurementFile(): Record<string, unknown> {
  const sections: [string, string][] = [
    ['.linux', 'kernel bytes'],
    ['.osrel', 'ID=debian\n'],
    ['.cmdline', 'console=ttyS0 root=/dev/vda2'],
    ['.initrd', 'initrd bytes'],
  ];
  const events = sections.flatMap(([name, data]) => [
    { type: 'EV_IPL', digest: sha256Hex(name + '\0'), description: `section name ${name}`, component: name },
    { type: 'EV_IPL', digest: sha256Hex(data), description: `section data ${name}`, component: name },
  ]);
  return {
    version: 1,
    image: { name: 'sextant-node', version: '0.1.0', ukiSha256: sha256Hex('uki'), stubVersion: '257' },
    bank: 'sha256',
    pcrs: {
      '11': { expected: replaySha256(events.map((e) => e.digest)), enforced: true, events },
      '12': { expected: '00'.repeat(32), enforced: true, events: [] },
      '4': { expected: sha256Hex('pcr4'), enforced: false },
    },
    metadata: { created: '2026-11-26T20:00:00Z', builder: 'test' },
  };
}

export async function writeJson(dir: string, name: string, value: unknown): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, JSON.stringify(value));
  return p;
}
