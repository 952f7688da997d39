import { rm } from 'node:fs/promises';
import { run } from '../lib/exec.js';

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
