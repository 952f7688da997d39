/**
 * Mutual attestation on two real swtpms: one is the node's TPM, the other the key service's.
 * The agent checks the service's quote (EK chain, AK, signature, nonce + TLS certificate
 * binding, pcrDigest, signed expected PCRs) and credential activation before it sends any
 * evidence; every refusal has its own KEYSERVICE_* code and leaves no trace of the node in
 * the service's audit log. The service's TPM is driven by the koffi -> ESYS engine.
 */
import { spawnKeyService, type KeyServiceChild } from '../helpers/keyservice-process.js';
import test from 'ava';
import { createServer, type Server } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { Tpm2ToolsAttester } from '../helpers/tpm2-tools-attester.js';
import { measurementsKeys, opensslHkdf, readStateSecrets, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { sextant } from '../helpers/cli.js';
import { startKeyService, type RunningKeyService } from '../../keyservice/service.js';
import { resolveConfig, type KeyServiceConfig } from '../../keyservice/config.js';
import { openStateDir } from '../../keyservice/state-dir.js';
import type { ServiceVerifierOptions } from '../../attestation/tpm/verify-service.js';
import type { ReferenceSet } from '../../attestation/policy/reference.js';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import { attest } from '../../agent/attest/client.js';
import { postJson, type PinnedEndpoint } from '../../agent/attest/transport.js';
import { readJsonBody, sendJson } from '../../lib/http-json.js';
import { hash, toHex } from '../../lib/bytes.js';
import type { AttestationTpm } from '../../attestation/tpm/tpm.js';

const DISK = '0b5e55ed-aaaa-4bbb-8ccc-dddddddddddd';
const BOOT = [
  { pcr: 4, data: 'service uki authenticode stand-in' },
  { pcr: 9, data: 'console=ttyS0 root=/dev/vda2' },
];

let node: Swtpm;
let svcTpm: Swtpm;
let tn: Tpm2ToolsAttester;
let dir: string;
let cfg: KeyServiceConfig;
let svc: RunningKeyService;
let ep: PinnedEndpoint;
let good: ReferenceSet;
let serviceEkDer: Uint8Array;
const cas = () => [svcTpm.caCertPath, svcTpm.issuerCertPath];

async function caCerts(files: string[]): Promise<X509Certificate[]> {
  return Promise.all(files.map(async (f) => new X509Certificate(await readFile(f))));
}

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ks-mutual-'));
  [node, svcTpm] = await Promise.all([startSwtpm(), startSwtpm()]);
  tn = await Tpm2ToolsAttester.create(node.tcti);
  const ts = await Tpm2ToolsAttester.create(svcTpm.tcti);
  for (const t of [tn, ts]) for (const e of BOOT) await t.extendPcr(e.pcr, toHex(hash('sha256', Buffer.from(e.data))));
  const servicePcrs = await ts.readPcrs();
  serviceEkDer = await ts.ekCertificate();
  await ts.dispose();
  good = { label: 'keyservice machine', pcrs: { '4': { expected: servicePcrs['4'], enforced: true }, '9': { expected: servicePcrs['9'], enforced: true } } };

  // The node's expected PCRs for the key service (the node TPM had the same boot).
  const keys = await measurementsKeys(dir);
  const measurements = path.join(dir, 'node-measurements.json');
  await writeSignedMeasurements(measurements, keys.keyPem, { '4': { expected: servicePcrs['4'], enforced: true }, '9': { expected: servicePcrs['9'], enforced: true } });
  cfg = resolveConfig({}, {
    listen: '127.0.0.1:0',
    stateDir: path.join(dir, 'state'),
    measurements,
    measurementsKey: keys.pubPem,
    ekCa: [node.caCertPath, node.issuerCertPath],
    rateLimit: { burst: 1000, perSecond: 100 },
    attestation: { tcti: svcTpm.tcti },
  });
  svc = await startKeyService(cfg, { openServiceTpm: (t) => EngineAttestationTpm.open(t) });
  ep = { url: svc.url, fingerprint: svc.fingerprint };
});

test.after.always(async () => {
  await svc?.close();
  await tn?.dispose();
  await node?.stop();
  await svcTpm?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function challengeCount(): Promise<number> {
  return (await readFile(svc.auditLog, 'utf8')).split('\n').filter((l) => l.includes('"decision":"challenge"')).length;
}

/** The agent must refuse with `code` before its first round: no new challenge in the service's audit log. */
async function refusedBeforeEvidence(t: import('ava').ExecutionContext, code: string, run: () => Promise<unknown>): Promise<void> {
  const before = await challengeCount();
  await t.throwsAsync(run, { code: code as never });
  t.is(await challengeCount(), before, 'the agent sent evidence to a key service it did not trust');
}

test.serial('the key service proves its PCRs and EK/AK binding; then the node attests and gets HKDF(master, salt, "key-"+uuid)', async (t) => {
  const verifyService: ServiceVerifierOptions = { ekCas: await caCerts(cas()), references: [good] };
  const r = await attest(tn, { endpoint: ep, diskUuid: DISK, role: 'join', nodeName: 'worker-1', verifyService, retry: { attempts: 1 } });
  t.is(r.service?.measurements, 'keyservice machine');
  const s = await readStateSecrets(cfg.stateDir);
  t.is(r.diskKey.toString('hex'), await opensslHkdf(s.master, s.salt, 'key-' + DISK));
});

test.serial('a key service whose PCRs differ from the signed expectation: KEYSERVICE_MEASUREMENTS_MISMATCH, nothing sent', async (t) => {
  const other: ReferenceSet = { label: 'other', pcrs: { ...good.pcrs, '9': { expected: 'ab'.repeat(32), enforced: true } } };
  const verifyService: ServiceVerifierOptions = { ekCas: await caCerts(cas()), references: [other] };
  await refusedBeforeEvidence(t, 'KEYSERVICE_MEASUREMENTS_MISMATCH', () => attest(tn, { endpoint: ep, diskUuid: DISK, role: 'join', nodeName: 'worker-1', verifyService, retry: { attempts: 1 } }));
});

test.serial('a quote relayed by another TLS server (other certificate): KEYSERVICE_QUOTE_NOT_BOUND, nothing sent', async (t) => {
  // A man in the middle with its own certificate, forwarding every request to the real service.
  const relayState = await openStateDir(path.join(dir, 'relay'));
  const relay: Server = createServer({ key: relayState.tlsKeyPem, cert: relayState.tlsCertPem }, (req, res) => {
    void (async () => {
      try {
        sendJson(res, 200, await postJson(ep, req.url ?? '/', await readJsonBody(req, 1 << 20)));
      } catch (e) {
        sendJson(res, 403, { ok: false, code: (e as { code?: string }).code ?? 'INTERNAL', message: String(e) });
      }
    })();
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => relay.close(() => resolve())));
  const relayEp = { url: `https://127.0.0.1:${(relay.address() as { port: number }).port}`, fingerprint: relayState.fingerprint };
  const verifyService: ServiceVerifierOptions = { ekCas: await caCerts(cas()), references: [good] };
  await refusedBeforeEvidence(t, 'KEYSERVICE_QUOTE_NOT_BOUND', () => attest(tn, { endpoint: relayEp, diskUuid: DISK, role: 'join', nodeName: 'worker-1', verifyService, retry: { attempts: 1 } }));
});

test.serial("the service TPM's EK certificate from a CA the node does not trust: KEYSERVICE_EK_UNTRUSTED, nothing sent", async (t) => {
  const verifyService: ServiceVerifierOptions = { ekCas: await caCerts([node.caCertPath, node.issuerCertPath]), references: [good] };
  await refusedBeforeEvidence(t, 'KEYSERVICE_EK_UNTRUSTED', () => attest(tn, { endpoint: ep, diskUuid: DISK, role: 'join', nodeName: 'worker-1', verifyService, retry: { attempts: 1 } }));
});

test.serial("a service presenting another TPM's EK certificate with its AK: KEYSERVICE_AK_NOT_BOUND (credential activation fails)", async (t) => {
  // A real EK certificate (the service swtpm's) next to an AK, quote and ActivateCredential from another real TPM.
  const liar: AttestationTpm = {
    ekCertificate: async () => serviceEkDer,
    akPublic: () => tn.akPublic(),
    quote: (d) => tn.quote(d),
    activateCredential: (b, s) => tn.activateCredential(b, s),
    dispose: async () => undefined,
  };
  const fake = await startKeyService({ ...cfg, stateDir: path.join(dir, 'liar'), auditLog: undefined }, { openServiceTpm: async () => liar });
  t.teardown(() => fake.close());
  const verifyService: ServiceVerifierOptions = { ekCas: await caCerts(cas()), references: [good] };
  await t.throwsAsync(attest(tn, { endpoint: { url: fake.url, fingerprint: fake.fingerprint }, diskUuid: DISK, role: 'join', nodeName: 'worker-1', verifyService, retry: { attempts: 1 } }), { code: 'KEYSERVICE_AK_NOT_BOUND' });
  t.false((await readFile(fake.auditLog, 'utf8')).includes('"decision":"challenge"'));
});

test.serial('CLI: sextant keyservice --tpm-tcti and sextant agent attest --keyservice-measurements; a service without a TPM is KEYSERVICE_NOT_ATTESTED', async (t) => {
  await svc.close(); // frees the service swtpm (one TPM connection at a time)
  // The node's own signer of the key service's expected PCRs (not the key service's signer).
  const keys = await measurementsKeys();
  t.teardown(() => rm(keys.dir, { recursive: true, force: true }));
  const serviceMeasurements = path.join(dir, 'keyservice-measurements.json');
  await writeSignedMeasurements(serviceMeasurements, keys.keyPem, good.pcrs);
  const wrong = path.join(dir, 'keyservice-wrong.json');
  await writeSignedMeasurements(wrong, keys.keyPem, { ...good.pcrs, '4': { expected: 'cd'.repeat(32), enforced: true } });
  const startCli = async (extra: string[], state: string): Promise<KeyServiceChild & { url: string }> => {
    const k = await spawnKeyService(['--listen', '127.0.0.1:0', '--state-dir', state, '--measurements', cfg.measurements, '--measurements-key', cfg.measurementsKey, '--ek-ca', node.caCertPath, '--ek-ca', node.issuerCertPath, ...extra]);
    return { ...k, url: k.listening };
  };
  const agent = (k: { url: string; fingerprint: string }, measurements: string) =>
    sextant(['agent', 'attest', '--tcti', node.tcti, '--keyservice', k.url, '--ca-fingerprint', k.fingerprint, '--disk-uuid', DISK, '--no-event-log', '--attempts', '1', '--json',
      '--keyservice-measurements', measurements, '--keyservice-measurements-key', keys.pubPem, '--keyservice-ek-ca', svcTpm.caCertPath, '--keyservice-ek-ca', svcTpm.issuerCertPath]);
  const withTpm = await startCli(['--tpm-tcti', svcTpm.tcti], path.join(dir, 'cli-state'));
  try {
    const ok = await agent(withTpm, serviceMeasurements);
    t.is(ok.exitCode, 0, ok.stderr);
    t.like(JSON.parse(ok.stdout), { ok: true, keyserviceAttested: { measurements: `sextant-test-node 1.0.0 (sha256:${toHex(hash('sha256', await readFile(serviceMeasurements))).slice(0, 16)})` } });
    const bad = await agent(withTpm, wrong);
    t.is(bad.exitCode, 1);
    t.like(JSON.parse(bad.stdout), { ok: false, code: 'KEYSERVICE_MEASUREMENTS_MISMATCH' });
  } finally {
    await withTpm.stop();
  }
  const without = await startCli([], path.join(dir, 'cli-state-2'));
  try {
    const r = await agent(without, serviceMeasurements);
    t.is(r.exitCode, 1);
    t.like(JSON.parse(r.stdout), { ok: false, code: 'KEYSERVICE_NOT_ATTESTED' });
  } finally {
    await without.stop();
  }
});
