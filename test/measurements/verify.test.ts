import test from 'ava';
import fc from 'fast-check';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { SextantError } from '../../lib/errors.js';
import type { MeasurementFile } from '../../measurements/format/index.js';
import { signBlob } from '../../measurements/sign/index.js';
import {
  compareWithPrediction,
  diffEvents,
  loadSignedMeasurements,
  SignatureInvalidError,
  verifyBlob,
  type PcrPrediction,
} from '../../measurements/verify/index.js';
import { sextant } from '../helpers/cli.js';
import { opensslKeyPair, opensslOtherKey, replaySha256, sampleMeasurementFile, sha256Hex, tempDir, writeJson } from './signing-helpers.js';

/** A signed sample file in a temp dir, keys made by openssl. */
async function signedSample(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t);
  const { key, pub } = await opensslKeyPair(dir);
  const file = await writeJson(dir, 'measurements.json', sampleMeasurementFile());
  const r = await sextant(['measurements', 'sign', '--key', key, file]);
  if (r.exitCode !== 0) throw new Error(r.stderr);
  return { dir, key, pub, file, sig: `${file}.sig` };
}

test('verify: the right key and untouched file exit 0', async (t) => {
  const s = await signedSample(t);
  const r = await sextant(['measurements', 'verify', '--key', s.pub, s.file]);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /^signature OK: .*key sha256:[0-9a-f]{64}/);
  t.regex(r.stdout, /image: sextant-node 0\.1\.0, stub 257/);
});

test('verify: wrong key, one changed byte, truncated signature and non-P-256 keys each fail with their own error', async (t) => {
  const s = await signedSample(t);
  const other = await opensslKeyPair(s.dir, 'other');

  const wrongKey = await sextant(['measurements', 'verify', '--key', other.pub, s.file, '--json']);
  t.is(wrongKey.exitCode, 1);
  t.like(JSON.parse(wrongKey.stdout), { ok: false, code: 'SIGNATURE_INVALID' });
  t.regex(wrongKey.stderr, /does not match/);

  const bytes = await readFile(s.file);
  bytes[bytes.indexOf('sextant-node')] ^= 0x20; // 's' -> 'S': still a valid file, a different one
  const tampered = path.join(s.dir, 'tampered.json');
  await writeFile(tampered, bytes);
  const changed = await sextant(['measurements', 'verify', '--key', s.pub, tampered, '--sig', s.sig]);
  t.is(changed.exitCode, 1);
  t.regex(changed.stderr, /^sextant: SIGNATURE_INVALID: .*does not match/);

  const sig = await readFile(s.sig, 'utf8');
  const truncated = path.join(s.dir, 'truncated.sig');
  await writeFile(truncated, sig.slice(0, 64));
  const short = await sextant(['measurements', 'verify', '--key', s.pub, s.file, '--sig', truncated]);
  t.is(short.exitCode, 1);
  t.regex(short.stderr, /^sextant: SIGNATURE_INVALID: the signature is not a DER ECDSA signature/);

  await writeFile(truncated, sig.slice(0, 61));
  const ragged = await sextant(['measurements', 'verify', '--key', s.pub, s.file, '--sig', truncated]);
  t.is(ragged.exitCode, 1);
  t.regex(ragged.stderr, /^sextant: SIGNATURE_INVALID: the signature is not base64/);

  for (const k of [
    (await opensslKeyPair(s.dir, 'p384', 'secp384r1')).pub,
    (await opensslOtherKey(s.dir, 'ED25519', 'ed')).pub,
    s.key, // a private key where the public one belongs
  ]) {
    const r = await sextant(['measurements', 'verify', '--key', k, s.file]);
    t.is(r.exitCode, 2, k);
    t.regex(r.stderr, /^sextant: KEY_INVALID: /, k);
  }

  const noSig = await sextant(['measurements', 'verify', '--key', s.pub, tampered]);
  t.is(noSig.exitCode, 2);
  t.regex(noSig.stderr, /FILE_NOT_FOUND: signature/);
});

test('verify: a correctly signed but invalid file is MEASUREMENTS_INVALID (exit 2)', async (t) => {
  const dir = await tempDir(t);
  const { key, pub } = await opensslKeyPair(dir);
  const file = await writeJson(dir, 'm.json', { version: 1, bank: 'sha256' });
  // sextant refuses to sign this, so openssl signs it.
  const der = path.join(dir, 'm.der');
  await run('openssl', ['dgst', '-sha256', '-sign', key, '-out', der, file]);
  await writeFile(`${file}.sig`, (await readFile(der)).toString('base64'));
  const r = await sextant(['measurements', 'verify', '--key', pub, file]);
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /^sextant: MEASUREMENTS_INVALID: .*image.*pcrs/);
});

test('loadSignedMeasurements: the key service API returns the file or throws a coded error', (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const bytes = Buffer.from(JSON.stringify(sampleMeasurementFile()));
  const sig = signBlob(bytes, privateKey);
  const file = loadSignedMeasurements(bytes, sig, pem);
  t.is(file.pcrs['11'].enforced, true);
  t.is(file.pcrs['11'].events?.[5].component, '.cmdline');

  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
  t.like(t.throws(() => loadSignedMeasurements(bytes, sig, other)), { code: 'SIGNATURE_INVALID', reason: 'mismatch' });
  t.like(t.throws(() => loadSignedMeasurements(bytes, sig.slice(0, 20), pem)), { code: 'SIGNATURE_INVALID', reason: 'malformed' });
  t.like(t.throws(() => loadSignedMeasurements(bytes, sig, 'not a key')), { code: 'KEY_INVALID' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
  t.like(t.throws(() => loadSignedMeasurements(bytes, sig, rsa)), { code: 'KEY_INVALID' });
  const invalid = Buffer.from('{"version":1}');
  t.like(t.throws(() => loadSignedMeasurements(invalid, signBlob(invalid, privateKey), pem)), { code: 'MEASUREMENTS_INVALID' });
});

test('property: sign/verify round-trips random bytes; any one-bit flip in bytes or signature fails', (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), fc.nat(), fc.nat(7), fc.boolean(), (bytes, at, bit, inSignature) => {
      const sig = signBlob(bytes, privateKey);
      verifyBlob(bytes, sig, publicKey);
      let badBytes: Uint8Array = bytes;
      let badSig = sig;
      if (inSignature || bytes.length === 0) {
        const s = Buffer.from(sig, 'latin1');
        s[at % s.length] ^= 1 << bit;
        badSig = s.toString('latin1');
      } else {
        badBytes = Buffer.from(bytes);
        badBytes[at % badBytes.length] ^= 1 << bit;
      }
      try {
        verifyBlob(badBytes, badSig, publicKey);
        return false;
      } catch (e) {
        return e instanceof SignatureInvalidError;
      }
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('property: verifyBlob on arbitrary signature text throws only SIGNATURE_INVALID', (t) => {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.base64String(), fc.uint8Array().map((b) => Buffer.from(b).toString('base64'))), (sig) => {
      try {
        verifyBlob(Buffer.from('data'), sig, publicKey);
        return false;
      } catch (e) {
        return e instanceof SextantError && e.code === 'SIGNATURE_INVALID';
      }
    }),
    { numRuns: 300 },
  );
  t.pass();
});

/** A recomputation that agrees with the sample except where told. */
function prediction(file: MeasurementFile, cmdline?: string, extraPcr11Event = false): PcrPrediction {
  const events = (file.pcrs['11'].events ?? []).map((e) => ({ pcr: 11, ...e }));
  if (cmdline !== undefined) events[5] = { ...events[5], digest: sha256Hex(cmdline) };
  if (extraPcr11Event) events.splice(2, 0, { pcr: 11, type: 'EV_IPL', digest: sha256Hex('.ucode\0'), description: 'section name .ucode', component: '.ucode' });
  return {
    pcrs: { '9': sha256Hex('pcr9'), '11': replaySha256(events.map((e) => e.digest)), '12': '00'.repeat(32) },
    events: [...events, { pcr: 9, type: 'EV_EVENT_TAG', digest: sha256Hex('x'), description: 'cmdline' }],
  };
}

test('compareWithPrediction: per PCR expected/computed/verdict, and a mismatch names the component', (t) => {
  const file = sampleMeasurementFile() as unknown as MeasurementFile;
  const same = compareWithPrediction(file, prediction(file));
  t.true(same.ok);
  t.deepEqual(same.rows.map((r) => [r.pcr, r.verdict]), [[4, 'not-recomputed'], [9, 'not-in-file'], [11, 'match'], [12, 'match']]);

  const changed = compareWithPrediction(file, prediction(file, 'console=ttyS0 init=/bin/sh'));
  t.false(changed.ok);
  const row = changed.rows.find((r) => r.pcr === 11)!;
  t.is(row.verdict, 'mismatch');
  t.deepEqual(row.differences.map((d) => [d.kind, d.component]), [['changed', '.cmdline']]);
  t.is(row.differences[0].computedDigest, sha256Hex('console=ttyS0 init=/bin/sh'));

  const inserted = compareWithPrediction(file, prediction(file, undefined, true));
  t.deepEqual(inserted.rows.find((r) => r.pcr === 11)!.differences.map((d) => [d.kind, d.component]), [['unexpected', '.ucode']]);

  file.pcrs['11'].enforced = false;
  t.true(compareWithPrediction(file, prediction(file, 'other')).ok, 'a warn-only mismatch is reported, not fatal');
});

test('diffEvents: dropped, added and changed events by name', (t) => {
  const ev = (component: string, digest: string) => ({ type: 'EV_IPL', digest, description: '', component });
  const a = [ev('.linux', 'aa'), ev('.osrel', 'bb'), ev('.cmdline', 'cc'), ev('.initrd', 'dd')];
  t.deepEqual(diffEvents(a, a), []);
  t.deepEqual(diffEvents(a, [a[0], a[2], a[3]]), [{ kind: 'missing', component: '.osrel', expectedDigest: 'bb' }]);
  t.deepEqual(diffEvents(a, [a[0], a[1], ev('.cmdline', 'ee'), a[3]]), [
    { kind: 'changed', component: '.cmdline', expectedDigest: 'cc', computedDigest: 'ee' },
  ]);
  t.deepEqual(diffEvents([ev('', 'aa')].map((e) => ({ ...e, component: undefined, description: 'kernel' })), []), [
    { kind: 'missing', component: 'kernel', expectedDigest: 'aa' },
  ]);
});
