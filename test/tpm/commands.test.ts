import test from 'ava';
import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { isSextantError } from '../../lib/errors.js';
import { execute, type TpmTransport } from '../../tpm/commands/command.js';
import { activateCredential } from '../../tpm/commands/activate-credential.js';
import { createPrimary } from '../../tpm/commands/create-primary.js';
import { flushContext } from '../../tpm/commands/flush-context.js';
import { getCapability } from '../../tpm/commands/get-capability.js';
import { getRandom } from '../../tpm/commands/get-random.js';
import { nvRead } from '../../tpm/commands/nv-read.js';
import { nvReadPublic } from '../../tpm/commands/nv-read-public.js';
import { pcrEvent } from '../../tpm/commands/pcr-event.js';
import { pcrRead } from '../../tpm/commands/pcr-read.js';
import { policySecret } from '../../tpm/commands/policy-secret.js';
import { quote } from '../../tpm/commands/quote.js';
import { readPublic } from '../../tpm/commands/read-public.js';
import { startAuthSession, TPM_SE } from '../../tpm/commands/start-auth-session.js';
import { EK_CERT_NV_INDEX, TPM_ALG, TPM_CAP, TPM_RH } from '../../tpm/constants.js';
import { makeCredential } from '../../tpm/credential/make-credential.js';
import { akTemplate, ekTemplateRsa2048 } from '../../tpm/ek/templates.js';
import { objectName } from '../../tpm/name.js';
import { pcrSelection, selectedPcrs } from '../../tpm/pcr-selection.js';
import { publicKeyPem } from '../../tpm/public-key.js';
import { verifyQuote } from '../../tpm/quote/verify.js';
import type { PcrBanks } from '../../measurements/pcr/extend.js';
import { TpmResponseError } from '../../tpm/rc.js';
import type { TpmtPublic } from '../../tpm/structures.js';
import { connectSwtpm, type SocketTransport } from '../helpers/tpm-socket.js';
import { useSwtpm } from '../helpers/swtpm.js';

const swtpm = useSwtpm(test);
// ava runs `before` hooks concurrently, so connect on first use (after the swtpm is up).
let connection: SocketTransport | undefined;
const tpm: TpmTransport = {
  send: async (cmd) => (connection ??= await connectSwtpm(swtpm().port)).send(cmd),
};
test.after.always(() => connection?.close());

/** swtpm serves one connection at a time: let go of ours while a tpm2-tools process runs. */
async function tool(args: string[], cwd?: string) {
  connection?.close();
  connection = undefined;
  await run(args[0], args.slice(1), { env: swtpm().env, cwd, timeoutMs: 60_000 });
}

const empty = new Uint8Array(0);

async function primary(hierarchy: number, template: TpmtPublic) {
  return execute(tpm, createPrimary, {
    primaryHandle: hierarchy,
    inSensitive: { value: { userAuth: empty, data: empty } },
    inPublic: { value: template },
    outsideInfo: empty,
    creationPCR: [],
  });
}

/** PCR_Read returns at most 8 digests per call: ask again for what is missing. */
async function readPcrs(indices: number[]): Promise<PcrBanks> {
  const values: Record<string, string> = {};
  let missing = indices;
  while (missing.length > 0) {
    const out = await execute(tpm, pcrRead, { pcrSelectionIn: pcrSelection({ sha256: missing }) });
    const got = selectedPcrs(out.pcrSelectionOut);
    if (got.length === 0) throw new Error('PCR_Read returned nothing');
    got.forEach((p, i) => (values[String(p.index)] = Buffer.from(out.pcrValues[i]).toString('hex')));
    missing = missing.filter((i) => !(String(i) in values));
  }
  return { sha256: values };
}

test.serial('GetRandom returns the bytes asked for', async (t) => {
  const out = await execute(tpm, getRandom, { bytesRequested: 24 });
  t.is(out.randomBytes.length, 24);
});

test.serial('PCR_Read of 0-15 equals tpm2_pcrread; PCR_Event extends H(0 || H(data))', async (t) => {
  const data = Buffer.from('sextant cluster id');
  const ev = await execute(tpm, pcrEvent, { pcrHandle: 16, eventData: data });
  const sha256 = ev.digests.find((d) => d.hashAlg === TPM_ALG.SHA256);
  t.deepEqual(Buffer.from(sha256!.digest), createHash('sha256').update(data).digest());

  const pcrs = await readPcrs([...Array(17).keys()]);
  const expected16 = createHash('sha256').update(Buffer.alloc(32)).update(createHash('sha256').update(data).digest()).digest('hex');
  t.is(pcrs.sha256!['16'], expected16);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-pcr-'));
  try {
    await tool(['tpm2_pcrread', 'sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16', '-o', path.join(dir, 'pcrs')]);
    const raw = await readFile(path.join(dir, 'pcrs'));
    for (let i = 0; i <= 16; i++) t.is(pcrs.sha256![String(i)], raw.subarray(32 * i, 32 * i + 32).toString('hex'), `PCR ${i}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.serial('an AK from akTemplate quotes PCRs 0-15; verifyQuote and tpm2_checkquote accept it', async (t) => {
  const ak = await primary(TPM_RH.ENDORSEMENT, akTemplate());
  try {
    t.deepEqual(Buffer.from(ak.name), Buffer.from(objectName(ak.outPublic)));
    const rp = await execute(tpm, readPublic, { objectHandle: ak.objectHandle });
    t.deepEqual(Buffer.from(rp.outPublic.raw!), Buffer.from(ak.outPublic.raw!));

    const nonce = randomBytes(32);
    const pcrIndices = [...Array(16).keys()];
    const q = await execute(tpm, quote, {
      signHandle: ak.objectHandle,
      qualifyingData: nonce,
      inScheme: { scheme: TPM_ALG.NULL },
      PCRselect: pcrSelection({ sha256: pcrIndices }),
    });
    const pcrs = await readPcrs(pcrIndices);
    const v = verifyQuote(
      { attest: q.quoted.raw!, signature: q.signature, akPublic: ak.outPublic },
      { extraData: nonce, pcrs, qualifiedSigner: rp.qualifiedName },
    );
    t.deepEqual(v.selection, { sha256: pcrIndices });

    const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-q-'));
    try {
      const { marshal } = await import('../../tpm/codec.js');
      const { TPMT_SIGNATURE } = await import('../../tpm/structures.js');
      await writeFile(path.join(dir, 'ak.pem'), publicKeyPem(ak.outPublic.value));
      await writeFile(path.join(dir, 'attest'), q.quoted.raw!);
      await writeFile(path.join(dir, 'sig'), marshal(TPMT_SIGNATURE, q.signature));
      await run('tpm2_checkquote', ['-u', 'ak.pem', '-m', 'attest', '-s', 'sig', '-q', nonce.toString('hex'), '-g', 'sha256'], { cwd: dir });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  } finally {
    await execute(tpm, flushContext, { flushHandle: ak.objectHandle });
  }
});

test.serial('the EK from template L-1 is the key in the EK certificate, and activates our credential', async (t) => {
  const ek = await primary(TPM_RH.ENDORSEMENT, ekTemplateRsa2048());
  const ak = await primary(TPM_RH.ENDORSEMENT, akTemplate());
  try {
    // The EK certificate swtpm_setup wrote certifies exactly this key.
    const nv = await execute(tpm, nvReadPublic, { nvIndex: EK_CERT_NV_INDEX.rsa2048 });
    const chunks: Uint8Array[] = [];
    for (let offset = 0; offset < nv.nvPublic.value.dataSize; offset += 512) {
      const size = Math.min(512, nv.nvPublic.value.dataSize - offset);
      const out = await execute(tpm, nvRead, { authHandle: TPM_RH.OWNER, nvIndex: EK_CERT_NV_INDEX.rsa2048, size, offset });
      chunks.push(out.data);
    }
    const cert = new X509Certificate(Buffer.concat(chunks));
    t.is(cert.publicKey.export({ type: 'spki', format: 'pem' }).toString(), publicKeyPem(ek.outPublic.value));

    // Credential activation through a policy session satisfying PolicySecret(TPM_RH_ENDORSEMENT).
    const secret = randomBytes(32);
    const cred = makeCredential({ ekPublic: ek.outPublic, akName: ak.name, secret });
    const session = await execute(tpm, startAuthSession, {
      tpmKey: TPM_RH.NULL,
      bind: TPM_RH.NULL,
      nonceCaller: randomBytes(32),
      encryptedSalt: empty,
      sessionType: TPM_SE.POLICY,
      symmetric: { algorithm: TPM_ALG.NULL },
      authHash: TPM_ALG.SHA256,
    });
    try {
      await execute(tpm, policySecret, {
        authHandle: TPM_RH.ENDORSEMENT,
        policySession: session.sessionHandle,
        nonceTPM: empty,
        cpHashA: empty,
        policyRef: empty,
        expiration: 0,
      });
      const out = await execute(
        tpm,
        activateCredential,
        { activateHandle: ak.objectHandle, keyHandle: ek.objectHandle, ...cred, secret: cred.encryptedSecret },
        [{ password: empty }, { sessionHandle: session.sessionHandle, nonceCaller: randomBytes(32), attributes: 0 }],
      );
      t.deepEqual(Buffer.from(out.certInfo), secret);
    } finally {
      await execute(tpm, flushContext, { flushHandle: session.sessionHandle }).catch(() => undefined);
    }
  } finally {
    await execute(tpm, flushContext, { flushHandle: ak.objectHandle });
    await execute(tpm, flushContext, { flushHandle: ek.objectHandle });
  }
});

test.serial('TPM errors come back as TpmResponseError with the decoded name', async (t) => {
  const e = await t.throwsAsync(execute(tpm, nvReadPublic, { nvIndex: 0x01c0ff99 }));
  t.true(e instanceof TpmResponseError && isSextantError(e, 'TPM_RC'));
  t.is((e as TpmResponseError).rcName, 'TPM_RC_HANDLE');
  t.is((e as TpmResponseError).decoded.handle, 1);
});

test.serial('nothing is left loaded (GetCapability HANDLES of transient objects)', async (t) => {
  const out = await execute(tpm, getCapability, { capability: TPM_CAP.HANDLES, property: 0x80000000, propertyCount: 64 });
  t.is(out.capabilityData.capability, TPM_CAP.HANDLES);
  if (out.capabilityData.capability === TPM_CAP.HANDLES) t.deepEqual(out.capabilityData.handles, []);
});
