import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { Tpm } from '../../tpm/client/tpm.js';
import { readEkCertificate } from '../../tpm/client/ek-cert.js';
import { sextant } from '../helpers/cli.js';
import { startSwtpm, useSwtpm } from '../helpers/swtpm.js';

const swtpm = useSwtpm(test);

/** `openssl verify` of a PEM certificate against the harness's local CA (root + intermediate). */
async function opensslVerify(pem: string, caCert: string, intermediate: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-ekcert-'));
  try {
    const file = path.join(dir, 'ek.pem');
    await writeFile(file, pem);
    const r = await run('openssl', ['verify', '-CAfile', caCert, '-untrusted', intermediate, file], { okExitCodes: [2] });
    return r.stdout + r.stderr;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test.serial('GetRandom returns the requested number of fresh bytes', async (t) => {
  const tpm = await Tpm.open({ tcti: swtpm().tcti });
  try {
    const a = await tpm.getRandom(100);
    const b = await tpm.getRandom(100);
    t.is(a.length, 100);
    t.false(Buffer.from(a).equals(Buffer.from(b)));
  } finally {
    await tpm.close();
  }
});

test.serial('the TPM reports its NV buffer size and PCR banks', async (t) => {
  const tpm = await Tpm.open({ tcti: swtpm().tcti });
  try {
    const props = await tpm.properties(0x12c, 1);
    t.true((props.get(0x12c) ?? 0) >= 512);
    const all = Array.from({ length: 24 }, (_, i) => i);
    t.deepEqual(await tpm.pcrBanks(), { sha1: all, sha256: all });
  } finally {
    await tpm.close();
  }
});

test.serial('the RSA EK certificate read from NV verifies to the local CA', async (t) => {
  const tpm = await Tpm.open({ tcti: swtpm().tcti });
  try {
    const cert = await readEkCertificate(tpm, 'rsa');
    t.is(cert.nvIndex, 0x01c00002);
    const pem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(cert.der).toString('base64')}\n-----END CERTIFICATE-----\n`;
    t.regex(await opensslVerify(pem, swtpm().caCertPath, swtpm().issuerCertPath), /: OK/);
  } finally {
    await tpm.close();
  }
});

test.serial('the chain really needs the harness CA: another CA rejects the EK certificate', async (t) => {
  const other = await startSwtpm();
  try {
    const r = await sextant(['tpm', 'ek-cert', '--tcti', swtpm().tcti]);
    t.is(r.exitCode, 0, r.stderr);
    t.notRegex(await opensslVerify(r.stdout, other.caCertPath, other.issuerCertPath), /: OK/);
  } finally {
    await other.stop();
  }
  t.false(existsSync(other.dir), 'the state directory is removed');
  t.throws(() => process.kill(other.pid, 0), undefined, 'the swtpm process is gone');
});

test.serial('sextant tpm ek-cert prints PEM that openssl verifies; --type ecc and --json too', async (t) => {
  const rsa = await sextant(['tpm', 'ek-cert', '--tcti', swtpm().tcti]);
  t.is(rsa.exitCode, 0, rsa.stderr);
  t.regex(rsa.stdout, /^-----BEGIN CERTIFICATE-----\n/);
  t.regex(await opensslVerify(rsa.stdout, swtpm().caCertPath, swtpm().issuerCertPath), /: OK/);

  const ecc = await sextant(['tpm', 'ek-cert', '--type', 'ecc', '--json'], { env: { SEXTANT_TCTI: swtpm().tcti } });
  t.is(ecc.exitCode, 0, ecc.stderr);
  const j = JSON.parse(ecc.stdout) as { type: string; nvIndex: string; pem: string };
  t.is(j.type, 'ecc');
  t.regex(await opensslVerify(j.pem, swtpm().caCertPath, swtpm().issuerCertPath), /: OK/);
  const text = (await run('openssl', ['x509', '-noout', '-text'], { input: j.pem })).stdout;
  t.regex(text, /Public Key Algorithm: id-ecPublicKey/);
});

test.serial('a TCTI with nothing behind it is TPM_UNAVAILABLE, bad TCTI syntax is a usage error', async (t) => {
  const dead = await sextant(['tpm', 'ek-cert', '--tcti', 'swtpm:host=127.0.0.1,port=1']);
  t.is(dead.exitCode, 1);
  t.regex(dead.stderr, /^sextant: TPM_UNAVAILABLE: /);
  const bad = await sextant(['tpm', 'ek-cert', '--tcti', 'swtpm;rm -rf /']);
  t.is(bad.exitCode, 2);
  t.regex(bad.stderr, /^sextant: INVALID_ARGUMENT: /);
});
