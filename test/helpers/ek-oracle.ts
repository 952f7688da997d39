import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hash, toHex } from '../../lib/bytes.js';
import { run } from '../../lib/exec.js';
import type { Swtpm } from './swtpm.js';
import { trimDer } from './tpm2-tools-attester.js';

/** Oracle: SHA-256 of the RSA EK certificate's public key (DER SPKI), by tpm2_nvread + openssl (files in dir). */
export async function ekPublicSha256(tpm: Swtpm, dir: string): Promise<string> {
  const der = path.join(dir, `ek-${tpm.port}.der`);
  await run('tpm2_nvread', ['0x01c00002', '-o', der], { env: tpm.env });
  await writeFile(der, trimDer(await readFile(der)));
  const pem = path.join(dir, `ek-${tpm.port}.pub.pem`);
  await run('openssl', ['x509', '-inform', 'DER', '-in', der, '-pubkey', '-noout', '-out', pem]);
  const spki = path.join(dir, `ek-${tpm.port}.spki`);
  await run('openssl', ['pkey', '-pubin', '-in', pem, '-outform', 'DER', '-out', spki]);
  return toHex(hash('sha256', await readFile(spki)));
}
