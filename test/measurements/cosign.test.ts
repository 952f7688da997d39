import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { debianPackage } from '../helpers/debian-package.js';
import { sextant } from '../helpers/cli.js';
import { opensslKeyPair, sampleMeasurementFile, tempDir, writeJson } from './signing-helpers.js';

// The real cosign as the oracle for the signature format: Debian trixie ships cosign 2.5
// (detached base64 signatures), sid ships cosign 3.1 (Sigstore bundles by default). Both are
// downloaded and unpacked privately (scripts/fetch-debian-package.sh), never installed.
// Nothing here reaches the network: no transparency log upload, --insecure-ignore-tlog on
// verify (sextant pins the release key; it does not use Rekor).

const COSIGNS = [
  { suite: 'trixie', major: 2 },
  { suite: 'sid', major: 3 },
] as const;

async function cosignBinary(suite: string): Promise<string> {
  return path.join(await debianPackage(suite, 'cosign'), 'usr/bin/cosign');
}

/** Runs cosign with a private HOME (no ~/.sigstore of the machine) and a test password. */
async function cosign(bin: string, dir: string, args: string[]) {
  const r = await execa(bin, args, {
    cwd: dir,
    reject: false,
    timeout: 60_000,
    env: { HOME: dir, COSIGN_PASSWORD: 'test-password', PATH: process.env.PATH ?? '/usr/bin:/bin' },
    extendEnv: false,
  });
  return { exitCode: r.exitCode ?? -1, out: `${r.stdout}\n${r.stderr}` };
}

/** A copy of `file` with one byte changed near its end. */
async function changedCopy(dir: string, file: string): Promise<string> {
  const bytes = await readFile(file);
  bytes[bytes.length - 3] ^= 0x01;
  const changed = path.join(dir, 'changed.json');
  await writeFile(changed, bytes);
  return changed;
}

for (const { suite, major } of COSIGNS) {
  test(`cosign ${major} (${suite}) verify-blob --key accepts what sextant measurements sign writes, and refuses a changed file`, async (t) => {
    const bin = await cosignBinary(suite);
    const dir = await tempDir(t);
    const { key, pub } = await opensslKeyPair(dir);
    const file = await writeJson(dir, 'measurements.json', sampleMeasurementFile());
    t.is((await sextant(['measurements', 'sign', '--key', key, file])).exitCode, 0);

    const ok = await cosign(bin, dir, ['verify-blob', '--key', pub, '--signature', `${file}.sig`, '--insecure-ignore-tlog=true', file]);
    t.is(ok.exitCode, 0, ok.out);
    t.regex(ok.out, /Verified OK/);

    const changed = await changedCopy(dir, file);
    const bad = await cosign(bin, dir, ['verify-blob', '--key', pub, '--signature', `${file}.sig`, '--insecure-ignore-tlog=true', changed]);
    t.not(bad.exitCode, 0, 'cosign refuses the changed file');
  });
}

test('sextant measurements verify accepts a signature by cosign 2 sign-blob with a cosign key pair, and refuses another key', async (t) => {
  const bin = await cosignBinary('trixie');
  const dir = await tempDir(t);
  const file = await writeJson(dir, 'measurements.json', sampleMeasurementFile());
  t.is((await cosign(bin, dir, ['generate-key-pair'])).exitCode, 0);
  const signed = await cosign(bin, dir, ['sign-blob', '--key', 'cosign.key', '--tlog-upload=false', '--yes', '--output-signature', 'm.sig', file]);
  t.is(signed.exitCode, 0, signed.out);

  const r = await sextant(['measurements', 'verify', '--key', path.join(dir, 'cosign.pub'), '--sig', path.join(dir, 'm.sig'), file, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { ok: true });

  const other = await opensslKeyPair(dir, 'other');
  const wrong = await sextant(['measurements', 'verify', '--key', other.pub, '--sig', path.join(dir, 'm.sig'), file]);
  t.is(wrong.exitCode, 1);
  t.regex(wrong.stderr, /SIGNATURE_INVALID/);
});

test('sextant measurements verify accepts a cosign 3 Sigstore bundle (sign-blob --bundle) and refuses it for a changed file or another key', async (t) => {
  const bin = await cosignBinary('sid');
  const dir = await tempDir(t);
  const file = await writeJson(dir, 'measurements.json', sampleMeasurementFile());
  t.is((await cosign(bin, dir, ['generate-key-pair'])).exitCode, 0);
  const signed = await cosign(bin, dir, [
    'sign-blob', '--key', 'cosign.key', '--use-signing-config=false', '--tlog-upload=false', '--yes', '--bundle', 'm.bundle.json', file,
  ]);
  t.is(signed.exitCode, 0, signed.out);
  const bundle = path.join(dir, 'm.bundle.json');
  t.regex(await readFile(bundle, 'utf8'), /application\/vnd\.dev\.sigstore\.bundle/);

  const r = await sextant(['measurements', 'verify', '--key', path.join(dir, 'cosign.pub'), '--sig', bundle, file]);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /signature OK/);

  const changed = await changedCopy(dir, file);
  const c = await sextant(['measurements', 'verify', '--key', path.join(dir, 'cosign.pub'), '--sig', bundle, changed]);
  t.is(c.exitCode, 1);
  t.regex(c.stderr, /SIGNATURE_INVALID: the sigstore bundle signs other bytes/);

  const other = await opensslKeyPair(dir, 'other');
  const k = await sextant(['measurements', 'verify', '--key', other.pub, '--sig', bundle, file]);
  t.is(k.exitCode, 1);
  t.regex(k.stderr, /SIGNATURE_INVALID: the sigstore bundle names another signing key/);
});
