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
export async function signWithThrowawayCert(dir: string, inFile: string, outFile: string, digest: 'sha256' | 'sha384'): Promise<void> {
  await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`, '-days', '1', '-subj', '/CN=sextant test']);
  await execa('osslsigncode', ['sign', '-certs', `${dir}/cert.pem`, '-key', `${dir}/key.pem`, '-h', digest, '-in', inFile, '-out', outFile]);
}
