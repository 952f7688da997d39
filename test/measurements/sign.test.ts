import test from 'ava';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { run } from '../../lib/exec.js';
import { signBlob } from '../../measurements/sign/index.js';
import { sextant } from '../helpers/cli.js';
import { opensslKeyPair, opensslOtherKey, sampleMeasurementFile, tempDir, writeJson } from './signing-helpers.js';

/** openssl's own verdict on FILE.sig, decoding the base64 to a temp file as the README shows. */
async function opensslVerifies(dir: string, pub: string, file: string, sig: string): Promise<boolean> {
  const der = path.join(dir, 'sig.der');
  await writeFile(der, (await run('base64', ['-d', sig], { binary: true })).stdoutBytes);
  const r = await run('openssl', ['dgst', '-sha256', '-verify', pub, '-signature', der, file], { okExitCodes: [1] });
  return r.exitCode === 0 && r.stdout.trim() === 'Verified OK';
}

test('sextant measurements sign writes FILE.sig that openssl verifies, and only for that file', async (t) => {
  const dir = await tempDir(t);
  const { key, pub } = await opensslKeyPair(dir);
  const file = await writeJson(dir, 'measurements.json', sampleMeasurementFile());
  const r = await sextant(['measurements', 'sign', '--key', key, file]);
  t.is(r.exitCode, 0, r.stderr);
  const sig = `${file}.sig`;
  const text = await readFile(sig, 'utf8');
  t.regex(text, /^[A-Za-z0-9+/]+={0,2}$/, 'one line of base64, no newline (cosign sign-blob)');
  t.true(await opensslVerifies(dir, pub, file, sig));

  // openssl's verdict flips with one changed byte: the signature covers the exact bytes.
  const bytes = await readFile(file);
  bytes[10] ^= 0x01;
  const tampered = path.join(dir, 'tampered.json');
  await writeFile(tampered, bytes);
  t.false(await opensslVerifies(dir, pub, tampered, sig));
});

test('an openssl-made signature (line-wrapped base64) verifies with sextant', async (t) => {
  const dir = await tempDir(t);
  const { key, pub } = await opensslKeyPair(dir);
  const file = await writeJson(dir, 'm.json', sampleMeasurementFile());
  const der = path.join(dir, 'm.der');
  await run('openssl', ['dgst', '-sha256', '-sign', key, '-out', der, file]);
  // `openssl base64` wraps at 64 columns; a DER P-256 signature is 70-72 bytes, so two lines.
  await run('openssl', ['base64', '-in', der, '-out', `${file}.sig`]);
  t.true((await readFile(`${file}.sig`, 'utf8')).trim().includes('\n'));
  const r = await sextant(['measurements', 'verify', '--key', pub, file]);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /signature OK/);
  const j = await sextant(['measurements', 'verify', '--key', pub, file, '--json']);
  t.like(JSON.parse(j.stdout), { ok: true, image: { name: 'sextant-node', version: '0.1.0' }, bank: 'sha256' });
});

test('signing with a key that is not ECDSA P-256 is KEY_INVALID (exit 2), and writes nothing', async (t) => {
  const dir = await tempDir(t);
  const file = await writeJson(dir, 'm.json', sampleMeasurementFile());
  const keys = [
    (await opensslKeyPair(dir, 'p384', 'secp384r1')).key,
    (await opensslOtherKey(dir, 'ED25519', 'ed')).key,
    (await opensslOtherKey(dir, 'RSA', 'rsa')).key,
    (await opensslKeyPair(dir, 'p256')).pub, // a public key cannot sign
  ];
  for (const key of keys) {
    const r = await sextant(['measurements', 'sign', '--key', key, file]);
    t.is(r.exitCode, 2, key);
    t.regex(r.stderr, /^sextant: KEY_INVALID: /, key);
  }
  t.false(existsSync(`${file}.sig`));
});

test('sign refuses a file that is not a valid measurements file (MEASUREMENTS_INVALID, exit 2)', async (t) => {
  const dir = await tempDir(t);
  const { key } = await opensslKeyPair(dir);
  const bad = sampleMeasurementFile() as any;
  bad.pcrs['11'].expected = '00'.repeat(32);
  const file = await writeJson(dir, 'bad.json', bad);
  const r = await sextant(['measurements', 'sign', '--key', key, file]);
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /^sextant: MEASUREMENTS_INVALID: .*pcrs\.11\.expected/);
  t.false(existsSync(`${file}.sig`));
  const missing = await sextant(['measurements', 'sign', '--key', path.join(dir, 'nope.pem'), file]);
  t.is(missing.exitCode, 2);
  t.regex(missing.stderr, /FILE_NOT_FOUND/);
  const noKey = await sextant(['measurements', 'sign', file]);
  t.is(noKey.exitCode, 2);
  t.regex(noKey.stderr, /USAGE: --key is required/);
});

test('an encrypted PKCS#8 key signs with its passphrase from SEXTANT_KEY_PASSPHRASE', async (t) => {
  const dir = await tempDir(t);
  const { key, pub } = await opensslKeyPair(dir);
  const enc = path.join(dir, 'enc.pem');
  await run('openssl', ['pkcs8', '-topk8', '-in', key, '-out', enc, '-passout', 'env:PW', '-v2', 'aes-256-cbc'], { env: { PW: 'correct horse' } });
  const file = await writeJson(dir, 'm.json', sampleMeasurementFile());
  const without = await sextant(['measurements', 'sign', '--key', enc, file]);
  t.is(without.exitCode, 2);
  t.regex(without.stderr, /KEY_INVALID: .*encrypted/);
  const wrong = await sextant(['measurements', 'sign', '--key', enc, file], { env: { SEXTANT_KEY_PASSPHRASE: 'wrong' } });
  t.is(wrong.exitCode, 2);
  t.regex(wrong.stderr, /KEY_INVALID/);
  const ok = await sextant(['measurements', 'sign', '--key', enc, file], { env: { SEXTANT_KEY_PASSPHRASE: 'correct horse' } });
  t.is(ok.exitCode, 0, ok.stderr);
  t.true(await opensslVerifies(dir, pub, file, `${file}.sig`));
});

test('signBlob needs a P-256 private key object', (t) => {
  const p256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  t.regex(signBlob(Buffer.from('x'), p256.privateKey), /^[A-Za-z0-9+/]+=*$/);
  t.throws(() => signBlob(Buffer.from('x'), p256.publicKey), { code: 'KEY_INVALID' });
  t.throws(() => signBlob(Buffer.from('x'), p384.privateKey), { code: 'KEY_INVALID' });
});
