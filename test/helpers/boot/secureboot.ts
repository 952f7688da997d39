import { copyFile, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../../lib/exec.js';
import { debianPackage, goSource } from '../debian-package.js';
import { FIXTURES } from '../paths.js';
import { CAPTURE_RECIPES, buildCaptureUki, type BuiltCaptureUki } from './capture-uki.js';
import { trixieStub } from '../uki.js';
import { sextant } from '../cli.js';

/** Test-only keys (test/fixtures/secureboot/README.md) and where the capture is kept. */
export const SB_FIXTURE_KEYS = path.join(FIXTURES, 'secureboot/keys');
export const SB_SIGNING_KEY = path.join(FIXTURES, 'secureboot/signing/db.key');
export const SB_SIGNING_CERT = path.join(FIXTURES, 'secureboot/signing/db.crt');
export const SB_BOOT_FIXTURE = 'secureboot-stub257';
/** The signing time of the capture UKI (fixed: the signed bytes are reproducible). */
export const SB_SIGNING_TIME = 1767225600; // 2026-01-01T00:00:00Z
export const MICROSOFT_OWNER = '77fa9abd-0359-4d32-bd60-28f4e78f784b';

/**
 * A key folder as real machines have them: the test PK, our KEK and db certificates next to
 * Microsoft's real KEK CA 2011 (KEK) and UEFI CA 2011 + Windows Production PCA 2011 (db), each
 * with Microsoft's owner GUID, and Microsoft's real dbx update of 2021-04-29. The Microsoft
 * files come from Debian's golang-github-google-go-eventlog-dev (wellknown/secure-boot).
 */
export async function realWorldKeyFolder(dir: string): Promise<{ keys: string; sources: Record<string, string> }> {
  const pkg = await debianPackage('sid', 'golang-github-google-go-eventlog-dev');
  const wellKnown = path.join(goSource(pkg, 'github.com/google/go-eventlog'), 'wellknown/secure-boot');
  const keys = path.join(dir, 'keys');
  await cp(SB_FIXTURE_KEYS, keys, { recursive: true });
  const add = async (db: string, file: string): Promise<void> => {
    await copyFile(path.join(wellKnown, file), path.join(keys, db, file));
    await writeFile(path.join(keys, db, file + '.owner'), MICROSOFT_OWNER);
  };
  await add('KEK', 'MicCorKEKCA2011_2011-06-24.crt');
  await add('db', 'MicCorUEFCA2011_2011-06-27.crt');
  await add('db', 'MicWinProPCA2011_2011-10-19.crt');
  await mkdir(path.join(keys, 'dbx'));
  await copyFile(path.join(wellKnown, 'dbxupdate_x64-2021-04-29.bin'), path.join(keys, 'dbx', 'dbxupdate_x64-2021-04-29.bin'));
  return { keys, sources: { package: (await readFile(path.join(pkg, '.deb-name'), 'utf8')).trim(), dir: 'wellknown/secure-boot' } };
}

export interface SecureBootCapture {
  keys: string;
  vars: string;
  unsigned: BuiltCaptureUki;
  signed: string;
}

/** The 257-stub capture UKI, unsigned and signed with the test db key, and a store with the real-world key folder. */
export async function secureBootCapture(dir: string): Promise<SecureBootCapture> {
  await trixieStub();
  const recipe = CAPTURE_RECIPES.find((r) => r.name === 'trixie-stub257')!;
  const unsigned = await buildCaptureUki(recipe, path.join(dir, 'capture.efi'));
  const signed = path.join(dir, 'capture.signed.efi');
  const s = await sextant(['image', 'sign-uki', unsigned.path, '--key', SB_SIGNING_KEY, '--cert', SB_SIGNING_CERT, '--time', String(SB_SIGNING_TIME), '--out', signed]);
  if (s.exitCode !== 0) throw new Error(`sextant image sign-uki failed: ${s.stderr}`);
  const { keys } = await realWorldKeyFolder(dir);
  const vars = path.join(dir, 'VARS.fd');
  const v = await sextant(['image', 'sb-vars', '--keys', keys, '--out', vars]);
  if (v.exitCode !== 0) throw new Error(`sextant image sb-vars failed: ${v.stderr}`);
  return { keys, vars, unsigned, signed };
}

/** A throw-away RSA key and self-signed certificate that no db entry trusts. */
export async function untrustedSigner(dir: string): Promise<{ key: string; cert: string }> {
  const key = path.join(dir, 'untrusted.key');
  const cert = path.join(dir, 'untrusted.crt');
  await run('openssl', ['req', '-new', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', '/CN=not in db/']);
  return { key, cert };
}

/** virt-fw-vars (Red Hat's virt-firmware, Debian trixie's python3-virt-firmware, unpacked privately) as an independent store reader. */
export async function virtFwVars(args: string[]): Promise<string> {
  const pkg = await debianPackage('trixie', 'python3-virt-firmware');
  const r = await run('/usr/bin/python3', ['-m', 'virt.firmware.vars', ...args], {
    env: { PYTHONPATH: path.join(pkg, 'usr/lib/python3/dist-packages') },
    timeoutMs: 120_000,
  });
  return r.stdout;
}
