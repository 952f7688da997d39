import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SextantError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import { authenticodeDigest } from '../measurements/pe/authenticode.js';
import { peSignature } from '../measurements/pe/signature.js';

export interface SignUkiOptions {
  /** RSA private key (PEM) and its certificate (PEM or DER), the db key that firmware trusts. */
  key: string;
  cert: string;
  /** Signing time written into the signature (unix seconds): fixed, so the output is reproducible. */
  time: number;
  log?: (line: string) => void;
}

/**
 * Authenticode-signs a UKI for Secure Boot with osslsigncode (SHA-256). The same inputs and
 * time give the same bytes when the key is RSA (PKCS#1 v1.5 signatures are deterministic;
 * sbsign stamps the current time, so it is not used). The Authenticode hash, and so PCR 4,
 * is the unsigned file's when its size is a multiple of 8 (the signer pads otherwise).
 */
export async function signUki(input: string, output: string, opts: SignUkiOptions): Promise<void> {
  await rm(output, { force: true }); // osslsigncode will not replace a file
  await run(
    'osslsigncode',
    ['sign', '-h', 'sha256', '-certs', opts.cert, '-key', opts.key, '-time', String(opts.time), '-in', input, '-out', output],
    { log: opts.log, timeoutMs: 120_000 },
  );
}

/** Who signed a UKI, as a release names it. */
export interface UkiSigner {
  subject: string;
  issuer: string;
  serialNumber: string;
  /** SHA-256 of the certificate's DER, lowercase hex (what `openssl x509 -fingerprint -sha256` prints). */
  sha256Fingerprint: string;
  validTo: string;
}

export function describeSigner(cert: X509Certificate): UkiSigner {
  return {
    subject: cert.subject.replace(/\n/g, ', '),
    issuer: cert.issuer.replace(/\n/g, ', '),
    serialNumber: cert.serialNumber.toLowerCase(),
    sha256Fingerprint: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
    validTo: new Date(cert.validTo).toISOString(),
  };
}

/** An RSA signing certificate, read and checked before a long build starts. */
export async function readSigningCertificate(file: string): Promise<X509Certificate> {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(await readFile(file));
  } catch (cause) {
    throw new SextantError({ code: 'KEY_INVALID', message: `${file}: not a readable X.509 certificate (${(cause as Error).message})`, cause });
  }
  if (cert.publicKey.asymmetricKeyType !== 'rsa') {
    throw new SextantError({ code: 'KEY_INVALID', message: `${file}: an RSA certificate is needed (ECDSA signatures are randomized, so the signed UKI would not be reproducible; OVMF verifies RSA)` });
  }
  return cert;
}

/**
 * Puts the Authenticode signature of `signedUki` (e.g. a release's) onto `unsignedUki`, the
 * way the signer appended it (osslsigncode attach-signature), so a rebuild can be compared
 * byte for byte with a signed release without its private key. Returns false, writing
 * nothing, when the signature does not cover `unsignedUki` (their Authenticode hashes differ:
 * the rebuild is not the release's UKI).
 */
export async function attachUkiSignature(unsignedUki: string, signedUki: string, output: string, log?: (line: string) => void): Promise<boolean> {
  const [unsigned, signed] = await Promise.all([readFile(unsignedUki), readFile(signedUki)]);
  const sig = peSignature(signed);
  if (!sig) throw new SextantError({ code: 'PE_SIGNATURE_INVALID', message: `${signedUki} carries no Authenticode signature` });
  if (!authenticodeDigest(unsigned, 'sha256').equals(authenticodeDigest(signed, 'sha256'))) return false;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-attach-'));
  try {
    const der = path.join(dir, 'signature.der');
    const chain = path.join(dir, 'chain.pem');
    await run('osslsigncode', ['extract-signature', '-in', signedUki, '-out', der], { log });
    // attach-signature also verifies the chain: the signature's own certificates anchor it;
    // what matters here is that the message digest covers the file, checked above and by it.
    await writeFile(chain, sig.chain.map((c) => c.toString()).join(''));
    await rm(output, { force: true });
    await run('osslsigncode', ['attach-signature', '-sigin', der, '-CAfile', chain, '-in', unsignedUki, '-out', output], { log, timeoutMs: 120_000 });
    return true;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `osslsigncode --version`'s first line, for the release manifest's tool versions. */
export async function osslsigncodeVersion(): Promise<string> {
  const r = await run('osslsigncode', ['--version'], { okExitCodes: [1] });
  const first = (r.stdout || r.stderr).split('\n')[0];
  return /^osslsigncode\s+([^\s,]+)/.exec(first)?.[1] ?? first.trim(); // "osslsigncode 2.9, using:" -> "2.9"
}
