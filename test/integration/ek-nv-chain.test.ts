/**
 * The agent reads every standard EK certificate index and the EK chain indices of a real
 * swtpm, and sends the chain: certificates written with tpm2_nvdefine / tpm2_nvwrite (the
 * oracle for what is in NV), a key service on loopback that trusts only the local CA's root,
 * so the attestation holds only if the intermediate travelled from the TPM's chain index.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { attest } from '../../agent/attest/client.js';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import { readAuditRecords } from '../../keyservice/audit/log.js';
import { resolveConfig, type KeyServiceConfig } from '../../keyservice/config.js';
import { startKeyService, type RunningKeyService } from '../../keyservice/service.js';
import { run } from '../../lib/exec.js';
import { readEkCredentials } from '../../tpm/client/ek-cert.js';
import { Tpm } from '../../tpm/client/tpm.js';
import { measurementsKeys, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';

const DISK = '0e1d2c3b-4a59-4687-9695-a4b3c2d1e0f9';
let sw: Swtpm;
let dir: string;
let svc: RunningKeyService;
let cfg: KeyServiceConfig;
let issuerDer: Buffer;
let rootDer: Buffer;

const tools = (cmd: string, args: string[]) => run(cmd, args, { env: { TPM2TOOLS_TCTI: sw.tcti }, timeoutMs: 60_000 });

/** An owner-defined index readable with its own empty auth (as EK certificate indices are), holding `data`. */
async function nvWriteIndex(index: number, data: Buffer, size = data.length): Promise<void> {
  const f = path.join(dir, `nv-${index.toString(16)}.bin`);
  await writeFile(f, data);
  await tools('tpm2_nvdefine', [`0x${index.toString(16)}`, '-C', 'o', '-s', String(size), '-a', 'ownerread|ownerwrite|authread|authwrite|no_da']);
  await tools('tpm2_nvwrite', [`0x${index.toString(16)}`, '-C', 'o', '-i', f]);
}

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ek-nv-'));
  sw = await startSwtpm();
  issuerDer = new X509Certificate(await readFile(sw.issuerCertPath)).raw;
  rootDer = new X509Certificate(await readFile(sw.caCertPath)).raw;
  const keys = await measurementsKeys(dir);
  const measurements = path.join(dir, 'measurements.json');
  await writeSignedMeasurements(measurements, keys.keyPem, { '4': { expected: '00'.repeat(32), enforced: true } });
  // Only the root: the EK certificate's issuer must come from the node.
  cfg = resolveConfig({}, { listen: '127.0.0.1:0', stateDir: path.join(dir, 'state'), measurements, measurementsKey: keys.pubPem, ekCa: [sw.caCertPath], rateLimit: { burst: 1000, perSecond: 100 } });
  svc = await startKeyService(cfg);
});

test.after.always(async () => {
  await svc?.close();
  await sw?.stop();
  await rm(dir, { recursive: true, force: true });
});

const attestWith = async (tpm: EngineAttestationTpm) => {
  try {
    return await attest(tpm, { endpoint: { url: svc.url, fingerprint: svc.fingerprint }, diskUuid: DISK, role: 'join', nodeName: 'worker-1', retry: { attempts: 1 } });
  } finally {
    await tpm.dispose();
  }
};

test.serial('without a chain index the key service, trusting only the root, refuses: EK_CERT_UNTRUSTED', async (t) => {
  const tpm = await EngineAttestationTpm.open(sw.tcti);
  t.deepEqual(await tpm.ekChain(), []);
  await t.throwsAsync(attestWith(tpm), { code: 'EK_CERT_UNTRUSTED' });
});

test.serial('every EK certificate index and the chain indices are read in index order, padding and the TCG 1.2 header removed; the intermediate in 0x01C00100 completes the chain', async (t) => {
  const tpm = await Tpm.open({ tcti: sw.tcti });
  const ekRsaFile = path.join(dir, 'ek-rsa.nv');
  await tools('tpm2_nvread', ['0x1c00002', '-C', 'o', '-o', ekRsaFile]);
  const ekRsa = await readFile(ekRsaFile);
  const before = await readEkCredentials(tpm);
  // swtpm_setup's own: RSA 2048 at L-1, its ECC certificate (P-384) at H-3.
  t.deepEqual(before.certificates.map((c) => [c.nvIndex, c.template]), [[0x01c00002, 'L-1 RSA 2048'], [0x01c00016, 'H-3 ECC NIST P-384']]);
  t.true(ekRsa.subarray(0, before.certificates[0].der.length).equals(Buffer.from(before.certificates[0].der)));

  // The chain: intermediate then root, each index padded; the RSA certificate again at H-6 (RSA 3072's index), behind a TCG 1.2 header.
  await nvWriteIndex(0x01c00100, Buffer.concat([issuerDer, Buffer.alloc(64, 0xff)]));
  await nvWriteIndex(0x01c00101, Buffer.concat([rootDer, Buffer.alloc(16)]));
  const ekDer = Buffer.from(before.certificates[0].der);
  await nvWriteIndex(0x01c0001c, Buffer.concat([Buffer.from([0x10, 0x01, 0x00, ekDer.length >> 8, ekDer.length & 0xff]), ekDer, Buffer.alloc(32)]));
  const after = await readEkCredentials(tpm);
  await tpm.close();
  t.deepEqual(after.certificates.map((c) => c.template), ['L-1 RSA 2048', 'H-3 ECC NIST P-384', 'H-6 RSA 3072']);
  t.deepEqual(Buffer.from(after.certificates[2].der), ekDer);
  t.deepEqual(after.chain.map((c) => Buffer.from(c)), [issuerDer, rootDer]);

  const r = await attestWith(await EngineAttestationTpm.open(sw.tcti));
  t.is(r.diskKey.length, 32);
  const challenge = (await readAuditRecords(svc.auditLog)).filter((x) => x.decision === 'challenge').at(-1)!;
  t.like(challenge, { ekPathLength: 1, ekIssuer: 'CN=sextant test EK issuer', ekAnchor: { subject: 'CN=sextant test EK root CA' }, ekTpm: { model: 'swtpm' } });
});

test.serial('a TPM without any EK certificate: the agent sends its EK public area; EK_CERT_ABSENT naming the key to enrol, then released once it is in the node inventory', async (t) => {
  // Like many firmware TPMs: no EK certificate index at all (swtpm_setup's are platform indices).
  for (const index of ['0x1c00002', '0x1c00016']) await tools('tpm2_nvundefine', [index, '-C', 'p']);
  await tools('tpm2_nvundefine', ['0x1c0001c', '-C', 'o']);
  const e = await t.throwsAsync(attestWith(await EngineAttestationTpm.open(sw.tcti)), { code: 'EK_CERT_ABSENT' });
  const sha = /sha256 ([0-9a-f]{64}) of the DER SubjectPublicKeyInfo/.exec(e!.message)?.[1];
  t.truthy(sha, e!.message);
  // The key to enrol is the EK's: tpm2_createek (the TCG default RSA template) prints the same public key.
  const pem = path.join(dir, 'ek.pem');
  await tools('tpm2_createek', ['-c', path.join(dir, 'ek.ctx'), '-G', 'rsa', '-u', pem, '-f', 'pem']);
  const { createPublicKey, createHash } = await import('node:crypto');
  t.is(createHash('sha256').update(createPublicKey(await readFile(pem)).export({ type: 'spki', format: 'der' })).digest('hex'), sha!);

  const inventory = path.join(dir, 'inventory.json');
  await writeFile(inventory, JSON.stringify({ [sha!]: 'worker-1' }));
  await svc.close();
  svc = await startKeyService({ ...cfg, nodeInventory: inventory });
  const r = await attestWith(await EngineAttestationTpm.open(sw.tcti));
  t.is(r.diskKey.length, 32);
  const records = await readAuditRecords(svc.auditLog);
  t.like(records.filter((x) => x.decision === 'challenge').at(-1), { ekEnrolled: true, ekPublicSha256: sha });
  t.like(records.filter((x) => x.decision === 'release').at(-1), { ekPublicSha256: sha, nodeName: 'worker-1' });
});
