import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generateTlsIdentity } from '../../../agent/recovery/self-signed-cert.js';
import { run } from '../../../lib/exec.js';

test('the in-memory certificate is what openssl reads: P-256, self-signed, not a CA; fingerprint = openssl SHA-256 of the DER', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'recovery-cert-'));
  try {
    const id = generateTlsIdentity('sextant-recovery', 30, new Date('2026-11-27T00:00:00Z'));
    const pem = path.join(dir, 'cert.pem');
    await writeFile(pem, id.certPem);
    const text = (await run('openssl', ['x509', '-in', pem, '-noout', '-text'])).stdout;
    t.regex(text, /Subject: CN ?= ?sextant-recovery/);
    t.regex(text, /NIST CURVE: P-256/);
    t.regex(text, /Basic Constraints: critical\s+CA:FALSE/);
    t.regex(text, /Not After : Dec 27 00:00:00 2026 GMT/);
    // The signature verifies under its own key (openssl, not our code, checks it).
    const verified = await run('openssl', ['verify', '-partial_chain', '-attime', String(Date.parse('2026-11-28T00:00:00Z') / 1000), '-CAfile', pem, pem]);
    t.regex(verified.stdout, /OK/);
    const fp = (await run('openssl', ['x509', '-in', pem, '-noout', '-fingerprint', '-sha256'])).stdout;
    t.is('sha256:' + fp.split('=')[1].trim().replace(/:/g, '').toLowerCase(), id.fingerprint);
    // The key belongs to the certificate.
    await writeFile(path.join(dir, 'key.pem'), id.keyPem, { mode: 0o600 });
    const certPub = (await run('openssl', ['x509', '-in', pem, '-noout', '-pubkey'])).stdout;
    const keyPub = (await run('openssl', ['pkey', '-in', path.join(dir, 'key.pem'), '-pubout'])).stdout;
    t.is(keyPub, certPub);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('two starts give two different identities', (t) => {
  t.not(generateTlsIdentity().fingerprint, generateTlsIdentity().fingerprint);
});
