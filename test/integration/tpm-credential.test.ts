import test from 'ava';
import { X509Certificate, randomBytes } from 'node:crypto';
import { isSextantError } from '../../lib/errors.js';
import { makeCredential } from '../../tpm/credential/make-credential.js';
import { activateAkCredential } from '../../tpm/client/attest.js';
import { readEkCertificate } from '../../tpm/client/ek-cert.js';
import { Tpm, type EkKind } from '../../tpm/client/tpm.js';
import { objectName } from '../../tpm/name.js';
import { publicKeyPem } from '../../tpm/public-key.js';
import type { Sized } from '../../tpm/codec.js';
import type { TpmtPublic } from '../../tpm/structures.js';
import { startSwtpm, useSwtpm, type Swtpm } from '../helpers/swtpm.js';

const swtpm = useSwtpm(test);

/** The EK public area and AK Name of a TPM, as the agent would send them to the key service. */
async function identity(tpm: Tpm, kind: EkKind): Promise<{ ekPublic: Sized<TpmtPublic>; akName: Uint8Array }> {
  return tpm.withEkAndAk(kind, async (ek, ak) => {
    // The Name the TPM reports is the one the codec computes from the public area.
    if (Buffer.compare(Buffer.from(ak.name), Buffer.from(objectName(ak.public))) !== 0) throw new Error('AK Name mismatch');
    return { ekPublic: ek.public, akName: ak.name };
  });
}

test.serial('the RSA EK created from the TCG template is the key in the EK certificate', async (t) => {
  const tpm = await Tpm.open({ tcti: swtpm().tcti });
  try {
    const cert = new X509Certificate(Buffer.from((await readEkCertificate(tpm, 'rsa')).der));
    const { ekPublic } = await identity(tpm, 'rsa');
    t.is(publicKeyPem(ekPublic.value), cert.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  } finally {
    await tpm.close();
  }
});

for (const kind of ['rsa', 'ecc'] as const) {
  test.serial(`MakeCredential in TS -> ActivateCredential in the TPM returns the secret (${kind} EK)`, async (t) => {
    const tpm = await Tpm.open({ tcti: swtpm().tcti });
    try {
      const { ekPublic, akName } = await identity(tpm, kind);
      const secret = randomBytes(32);
      const credential = makeCredential({ ekPublic, akName, secret });
      const released = await activateAkCredential(tpm, kind, credential);
      t.deepEqual(Buffer.from(released), secret);
      t.deepEqual(await tpm.transientHandles(), []);
      t.deepEqual(await tpm.sessionHandles(), [], 'the policy session was flushed');
    } finally {
      await tpm.close();
    }
  });
}

test.serial('a credential for another TPM\'s AK, or to another TPM\'s EK, is CREDENTIAL_ACTIVATION_FAILED', async (t) => {
  let other: Swtpm | undefined;
  const tpm = await Tpm.open({ tcti: swtpm().tcti });
  try {
    other = await startSwtpm();
    const otherTpm = await Tpm.open({ tcti: other.tcti });
    let foreign: { ekPublic: Sized<TpmtPublic>; akName: Uint8Array };
    try {
      foreign = await identity(otherTpm, 'rsa');
    } finally {
      await otherTpm.close();
    }
    const mine = await identity(tpm, 'rsa');
    t.notDeepEqual(Buffer.from(foreign.akName), Buffer.from(mine.akName), 'two swtpms have different AKs');
    const secret = randomBytes(32);

    // Our EK, but the Name of an AK that lives in the other TPM: the integrity HMAC fails.
    const wrongAk = makeCredential({ ekPublic: mine.ekPublic, akName: foreign.akName, secret });
    const e1 = await t.throwsAsync(activateAkCredential(tpm, 'rsa', wrongAk));
    t.true(isSextantError(e1, 'CREDENTIAL_ACTIVATION_FAILED'), String(e1));
    t.regex(e1!.message, /TPM_RC_/);

    // Our AK's Name, but the seed encrypted to the other TPM's EK.
    const wrongEk = makeCredential({ ekPublic: foreign.ekPublic, akName: mine.akName, secret });
    const e2 = await t.throwsAsync(activateAkCredential(tpm, 'rsa', wrongEk));
    t.true(isSextantError(e2, 'CREDENTIAL_ACTIVATION_FAILED'), String(e2));

    t.deepEqual(await tpm.transientHandles(), []);
    t.deepEqual(await tpm.sessionHandles(), []);
  } finally {
    await tpm.close();
    await other?.stop();
  }
});
