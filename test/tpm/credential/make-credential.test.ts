import test from 'ava';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../../lib/exec.js';
import { isSextantError } from '../../../lib/errors.js';
import { marshal, unmarshal } from '../../../tpm/codec.js';
import { activateCredentialInSoftware } from '../../../tpm/credential/activate-software.js';
import { makeCredential } from '../../../tpm/credential/make-credential.js';
import { decodeTpm2ToolsCredential, encodeTpm2ToolsCredential } from '../../../tpm/credential/tpm2-tools-file.js';
import { ekTemplateEccP256, ekTemplateRsa2048 } from '../../../tpm/ek/templates.js';
import { objectName } from '../../../tpm/name.js';
import { tpmtWithPublicKey } from '../../../tpm/public-key.js';
import { decodeRc } from '../../../tpm/rc.js';
import { TPM2B_PUBLIC, type TpmtPublic } from '../../../tpm/structures.js';
import { fixture, fixturePublic } from '../fixtures.js';
import { useSwtpm, type Swtpm } from '../../helpers/swtpm.js';

/** A software "EK" with the EK template's parameters, whose private key we hold. */
function softwareEk(kind: 'rsa' | 'ecc') {
  if (kind === 'rsa') {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return { ekPublic: tpmtWithPublicKey(ekTemplateRsa2048(), publicKey) as TpmtPublic, ekPrivateKey: privateKey };
  }
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ekPublic: tpmtWithPublicKey(ekTemplateEccP256(), publicKey) as TpmtPublic, ekPrivateKey: privateKey };
}

const akName = () => objectName(fixturePublic('ak-ecc.pub'));

for (const kind of ['rsa', 'ecc'] as const) {
  test(`${kind}: a credential made by tpm2_makecredential opens with our activation math`, async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-mc-'));
    try {
      const ek = softwareEk(kind);
      const secret = randomBytes(32);
      await writeFile(path.join(dir, 'ek.pub'), marshal(TPM2B_PUBLIC, { value: ek.ekPublic }));
      await writeFile(path.join(dir, 'secret'), secret);
      await run('tpm2_makecredential', [
        '-T', 'none',
        '-u', path.join(dir, 'ek.pub'),
        '-s', path.join(dir, 'secret'),
        '-n', Buffer.from(akName()).toString('hex'),
        '-o', path.join(dir, 'cred'),
      ]);
      const cred = decodeTpm2ToolsCredential(await readFile(path.join(dir, 'cred')));
      t.deepEqual(activateCredentialInSoftware({ ...ek, ...cred, akName: akName() }), secret);
      // ...and only for that AK Name.
      t.throws(() => activateCredentialInSoftware({ ...ek, ...cred, akName: objectName(fixturePublic('ak-rsassa.pub')) }), {
        code: 'CREDENTIAL_ACTIVATION_FAILED',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test(`${kind}: our credential opens only with the right EK and AK Name`, (t) => {
    const ek = softwareEk(kind);
    const secret = randomBytes(16);
    const cred = makeCredential({ ekPublic: ek.ekPublic, akName: akName(), secret });
    t.deepEqual(activateCredentialInSoftware({ ...ek, ...cred, akName: akName() }), secret);
    const other = softwareEk(kind);
    const e = t.throws(() => activateCredentialInSoftware({ ...other, ekPublic: ek.ekPublic, ...cred, akName: akName() }));
    t.true(isSextantError(e, 'CREDENTIAL_ACTIVATION_FAILED'));
    const file = encodeTpm2ToolsCredential(cred);
    t.deepEqual(decodeTpm2ToolsCredential(file), { credentialBlob: Uint8Array.from(cred.credentialBlob), encryptedSecret: Uint8Array.from(cred.encryptedSecret) });
  });
}

test('makeCredential refuses a secret longer than the digest, a signing key as EK, an empty Name', (t) => {
  const { ekPublic } = softwareEk('ecc');
  t.throws(() => makeCredential({ ekPublic, akName: akName(), secret: randomBytes(33) }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => makeCredential({ ekPublic, akName: new Uint8Array(2), secret: randomBytes(8) }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => makeCredential({ ekPublic: fixturePublic('ak-ecc.pub'), akName: akName(), secret: randomBytes(8) }), {
    code: 'KEY_INVALID',
  });
});

// ---- the real proof: a TPM opens what we made -----------------------------------------

const tpm = useSwtpm(test);

/** Runs a tpm2-tools command, then flushes what it left loaded (swtpm has no resource manager). */
async function tool(s: Swtpm, cwd: string, args: string[]) {
  try {
    return await run(args[0], args.slice(1), { env: s.env, cwd });
  } finally {
    await run('tpm2_flushcontext', ['-t'], { env: s.env, cwd });
    await run('tpm2_flushcontext', ['-s'], { env: s.env, cwd });
  }
}

/** ActivateCredential on the swtpm with tpm2-tools; returns the secret or the TPM_RC. */
async function activateOnTpm(s: Swtpm, dir: string, credFile: Uint8Array): Promise<Buffer | number> {
  await writeFile(path.join(dir, 'cred'), credFile);
  try {
    // The session lives in the TPM until ActivateCredential uses it: no flushing in between.
    await run('tpm2_startauthsession', ['--policy-session', '-S', 'session.ctx'], { env: s.env, cwd: dir });
    await run('tpm2_policysecret', ['-S', 'session.ctx', '-c', 'e'], { env: s.env, cwd: dir });
    await run(
      'tpm2_activatecredential',
      ['-c', 'ak.ctx', '-C', 'ek.ctx', '-i', 'cred', '-o', 'secret.out', '-P', 'session:session.ctx'],
      { env: s.env, cwd: dir },
    );
    return await readFile(path.join(dir, 'secret.out'));
  } catch (e) {
    const m = /Esys_ActivateCredential\(0x([0-9A-Fa-f]+)\)/.exec(String((e as Error).message));
    if (!m) throw e;
    return parseInt(m[1], 16);
  } finally {
    await run('tpm2_flushcontext', ['-t'], { env: s.env, cwd: dir });
    await run('tpm2_flushcontext', ['-s'], { env: s.env, cwd: dir });
  }
}

for (const kind of ['rsa', 'ecc'] as const) {
  test.serial(`${kind} EK on swtpm: TPM2_ActivateCredential returns the secret our MakeCredential wrapped`, async (t) => {
    const s = tpm();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-ac-'));
    try {
      await tool(s, dir, ['tpm2_createek', '-G', kind, '-c', 'ek.ctx', '-u', 'ek.pub']);
      await tool(s, dir, ['tpm2_createak', '-C', 'ek.ctx', '-c', 'ak.ctx', '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', 'ak.pub', '-n', 'ak.name']);
      const ekPublic = unmarshal(TPM2B_PUBLIC, await readFile(path.join(dir, 'ek.pub')));
      const ak = unmarshal(TPM2B_PUBLIC, await readFile(path.join(dir, 'ak.pub')));
      const name = objectName(ak);
      t.deepEqual(Buffer.from(name), await readFile(path.join(dir, 'ak.name')));

      const secret = randomBytes(32);
      const cred = makeCredential({ ekPublic, akName: name, secret });
      t.deepEqual(await activateOnTpm(s, dir, encodeTpm2ToolsCredential(cred)), secret);

      // Made for another AK (here: one from another TPM's fixtures): the TPM refuses it.
      const foreign = makeCredential({ ekPublic, akName: objectName(fixturePublic('ak-ecc.pub')), secret });
      const rc = await activateOnTpm(s, dir, encodeTpm2ToolsCredential(foreign));
      t.is(typeof rc, 'number');
      t.is(decodeRc(rc as number).name, 'TPM_RC_INTEGRITY');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test('the fixture AK Name is what tpm2_readpublic reported', (t) => {
  t.deepEqual(Buffer.from(akName()), fixture('ak-ecc.name'));
});
