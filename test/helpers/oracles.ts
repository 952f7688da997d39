import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';

/** `pesign -h`: the Authenticode SHA-256 digest as pesign computes it (an independent implementation). */
export async function pesignHash(file: string): Promise<string> {
  const r = await execa('pesign', ['-h', '-d', 'sha256', '-i', file]);
  const m = /hash:\s*([0-9a-f]{64})/i.exec(r.stdout);
  if (!m) throw new Error(`unexpected pesign output: ${r.stdout}`);
  return m[1].toLowerCase();
}

/** `osslsigncode verify`: the digest it calculates over a signed file (in the signature's hash). */
export async function osslsigncodeCalculatedDigest(file: string): Promise<string> {
  const r = await execa('osslsigncode', ['verify', '-in', file], { reject: false });
  const m = /Calculated message digest\s*:\s*([0-9A-Fa-f]+)/.exec(r.stdout + r.stderr);
  if (!m) throw new Error(`unexpected osslsigncode output: ${r.stdout}${r.stderr}`);
  return m[1].toLowerCase();
}

/** Signs a PE with a throwaway self-signed certificate made by openssl. */
export async function signWithThrowawayCert(parent: string, inFile: string, outFile: string, digest: 'sha256' | 'sha384'): Promise<void> {
  // a fresh folder per call: concurrent tests must not mix one key with another's certificate
  const dir = await mkdtemp(path.join(parent, 'signer-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=sextant test']);
  await execa('osslsigncode', ['sign', '-certs', cert, '-key', key, '-h', digest, '-in', inFile, '-out', outFile]);
}
