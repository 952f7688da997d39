/**
 * Session arithmetic against published vectors. KDFa: the TPM reference implementation's
 * self-test vector (KdfTestData.h in ms-tpm-20-ref, read from Debian's
 * golang-github-google-go-tpm-tools-dev at test time), for every hash the header has. The
 * HMACs and the CFB encryption are checked against a TPM in
 * test/integration/tpm-session-bus.test.ts: swtpm (libtpms, the reference code) accepts the
 * command HMACs and parameter encryption computed here and refuses them when one byte changes,
 * and its response HMACs verify here.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { HashAlg } from '../../lib/bytes.js';
import { kdfa } from '../../tpm/credential/kdf.js';
import { cfb, cpHash, rpHash, sessionHmac, sessionKey } from '../../tpm/session/crypto.js';
import { debianPackage, goSource } from '../helpers/debian-package.js';

async function kdfTestData(): Promise<string> {
  const root = goSource(await debianPackage('sid', 'golang-github-google-go-tpm-tools-dev'), 'github.com/google/go-tpm-tools');
  return readFile(path.join(root, 'simulator/ms-tpm-20-ref/TPMCmd/tpm/include/KdfTestData.h'), 'utf8');
}

/** The bytes of the `{{size, { 0x.., ... }}}` initializer that follows `name =`. */
function initializer(text: string, name: string, from = 0): Buffer {
  const at = text.indexOf(`${name} =`, from);
  if (at < 0) throw new Error(`${name} not in KdfTestData.h`);
  const body = text.slice(at, text.indexOf('}}}', at));
  const m = /\{\{\s*(\w+)\s*,\s*\{([^}]*)/.exec(body);
  if (!m) throw new Error(`${name}: no initializer`);
  return Buffer.from((m[2].match(/0x[0-9a-fA-F]{2}/g) ?? []).map((b) => parseInt(b, 16)));
}

test('KDFa matches the reference implementation self-test vector for every hash in KdfTestData.h', async (t) => {
  const text = await kdfTestData();
  const key = initializer(text, 'c_kdfTestKeyIn');
  const label = initializer(text, 'c_kdfTestLabel');
  const u = initializer(text, 'c_kdfTestContextU');
  const v = initializer(text, 'c_kdfTestContextV');
  t.is(label.toString('latin1'), 'KDFSELFTESTLABEL\0');
  // Each `#if ALG_SHAxxx` / `#elif ALG_SHAxxx` arm holds that hash's expected output.
  const arms = [...text.matchAll(/#(?:el)?if ALG_(SHA\d+) == ALG_YES/g)];
  t.true(arms.length >= 4, 'sha1, sha256, sha384, sha512');
  for (const arm of arms) {
    const alg = arm[1].toLowerCase() as HashAlg;
    const expected = initializer(text, 'c_kdfTestKeyOut', arm.index);
    t.is(kdfa(alg, key, label, u, v, expected.length * 8).toString('hex'), expected.toString('hex'), alg);
  }
});

test('session key: empty for an unsalted, unbound session; KDFa "ATH" over nonceTPM, nonceCaller otherwise', (t) => {
  const nonceTPM = Buffer.alloc(32, 1);
  const nonceCaller = Buffer.alloc(32, 2);
  t.is(sessionKey('sha256', new Uint8Array(0), new Uint8Array(0), nonceTPM, nonceCaller).length, 0);
  const salt = Buffer.alloc(32, 3);
  t.deepEqual(sessionKey('sha256', new Uint8Array(0), salt, nonceTPM, nonceCaller), kdfa('sha256', salt, 'ATH', nonceTPM, nonceCaller, 256));
  // bind authValue || salt
  const bind = Buffer.from('auth');
  t.deepEqual(sessionKey('sha256', bind, salt, nonceTPM, nonceCaller), kdfa('sha256', Buffer.concat([bind, salt]), 'ATH', nonceTPM, nonceCaller, 256));
});

test('cpHash, rpHash and the HMAC cover every field: changing any one changes the result', (t) => {
  const base = { key: Buffer.alloc(32, 9), pHash: cpHash('sha256', 0x147, [Buffer.from('n1'), Buffer.from('n2')], Buffer.from('params')), nonceNewer: Buffer.alloc(32, 1), nonceOlder: Buffer.alloc(32, 2), attributes: 0x41 };
  const h = sessionHmac('sha256', base).toString('hex');
  t.not(sessionHmac('sha256', { ...base, attributes: 0x01 }).toString('hex'), h);
  t.not(sessionHmac('sha256', { ...base, nonceNewer: Buffer.alloc(32, 3) }).toString('hex'), h);
  t.not(sessionHmac('sha256', { ...base, nonceOlder: Buffer.alloc(32, 3) }).toString('hex'), h);
  t.not(sessionHmac('sha256', { ...base, pHash: cpHash('sha256', 0x147, [Buffer.from('n1')], Buffer.from('params')) }).toString('hex'), h);
  t.not(rpHash('sha256', 0, 0x147, Buffer.from('p')).toString('hex'), rpHash('sha256', 0, 0x148, Buffer.from('p')).toString('hex'));
});

test('CFB parameter encryption: the key and IV depend on both nonces and on the direction', (t) => {
  const key = Buffer.alloc(32, 5);
  const a = Buffer.alloc(32, 1);
  const b = Buffer.alloc(32, 2);
  const data = Buffer.from('a secret of some length, not a whole number of blocks');
  const sent = cfb('encrypt', 'sha256', key, a, b, data);
  t.is(sent.length, data.length, 'CFB keeps the length (the TPM2B size field is not encrypted)');
  t.deepEqual(cfb('decrypt', 'sha256', key, a, b, sent), data);
  t.notDeepEqual(cfb('decrypt', 'sha256', key, b, a, sent), data, 'swapped nonces give another key');
});
