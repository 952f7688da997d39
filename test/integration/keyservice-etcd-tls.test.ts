/**
 * The key service on etcd over TLS with client-certificate authentication: a real etcd
 * (Debian's etcd-server) on loopback serving https only and asking every client for a
 * certificate signed by its CA (`--client-cert-auth`), certificates made by openssl in a
 * temporary directory, a live swtpm attesting through the ESYS engine. Proves the release
 * through the https store, that a wrong CA, a missing or foreign client certificate, and a
 * plaintext member behind an https:// URL each fail at start with STORE_TLS_FAILED naming
 * the reason (and nothing is written in clear), and that http:// with TLS options is USAGE.
 */
import anyTest, { type TestFn } from 'ava';
import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import { openStateDir } from '../../keyservice/state-dir.js';
import { run } from '../../lib/exec.js';
import { attestSteps } from '../helpers/attest-steps.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { makeEtcdPki, type EtcdPki } from '../helpers/etcd-pki.js';
import { measureBoot } from '../helpers/measured-boot.js';
import { measurementsKeys, opensslHkdf, writeSignedMeasurements } from '../helpers/keyservice-fixture.js';
import { spawnKeyService } from '../helpers/keyservice-process.js';
import { SEXTANT_BIN } from '../helpers/paths.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';

interface Ctx {
  dir: string;
  pki: EtcdPki;
  etcd: EtcdCluster;
  plain: EtcdCluster;
  sw: Swtpm;
  tpm: EngineAttestationTpm;
  eventLog: Buffer;
  state: string;
  /** The service's options but the store's. */
  base: string[];
  /** The store options of a correctly configured replica. */
  good: string[];
}

const test = anyTest as TestFn<Ctx>;

const DISK = 'e7cd0000-0000-4000-8000-00000000a11c';

test.before(async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-etcd-tls-'));
  const pki = await makeEtcdPki(dir);
  const [etcd, plain, sw] = await Promise.all([
    startEtcdCluster(1, { tls: { cert: pki.serverCert, key: pki.serverKey, trustedCa: pki.ca, clientCertAuth: true, clientCert: pki.clientCert, clientKey: pki.clientKey } }),
    startEtcdCluster(1),
    startSwtpm(),
  ]);
  const { eventLog, enforced } = await measureBoot(sw.tcti);
  const keys = await measurementsKeys(dir);
  const state = path.join(dir, 'state');
  (await openStateDir(state)).masterSecret.fill(0);
  const m = path.join(dir, 'measurements.json');
  await writeSignedMeasurements(m, keys.keyPem, enforced);
  t.context = {
    dir,
    pki,
    etcd,
    plain,
    sw,
    eventLog,
    state,
    tpm: await EngineAttestationTpm.open(sw.tcti),
    base: ['--listen', '127.0.0.1:0', '--state-dir', state, '--measurements', m, '--measurements-key', keys.pubPem, '--ek-ca', sw.caCertPath, '--ek-ca', sw.issuerCertPath],
    good: ['--store', 'etcd', '--etcd-endpoints', etcd.endpoints[0], '--etcd-ca', pki.ca, '--etcd-cert', pki.clientCert, '--etcd-key', pki.clientKey],
  };
});

test.after.always(async (t) => {
  const c = t.context;
  if (!c) return;
  await c.tpm?.dispose();
  await c.sw?.stop();
  await Promise.all([c.etcd?.stop(), c.plain?.stop()]);
  await rm(c.dir, { recursive: true, force: true });
});

/** `sextant keyservice ARGS --json` expected to refuse to start: its exit code and error answer. */
async function refusedStart(args: string[]): Promise<{ exitCode?: number; code?: string; message: string; ms: number }> {
  const t0 = Date.now();
  const r = await execa(process.execPath, [SEXTANT_BIN, 'keyservice', ...args, '--json'], { reject: false, timeout: 30_000 });
  const line = String(r.stdout).split('\n')[0] || '{}';
  const out = JSON.parse(line) as { ok?: boolean; code?: string; message?: string };
  if (out.ok) throw new Error(`the key service started: ${line}`);
  return { exitCode: r.exitCode, code: out.code, message: out.message ?? String(r.stderr), ms: Date.now() - t0 };
}

const etcdctl = (c: Ctx, endpoint: string, tls: boolean, ...args: string[]) =>
  run('etcdctl', ['--endpoints', endpoint, ...(tls ? ['--cacert', c.pki.ca, '--cert', c.pki.clientCert, '--key', c.pki.clientKey] : []), ...args], { env: { ETCDCTL_API: '3' } });

test.serial('released through an https etcd that requires a client certificate; the binding and the audit chain are in that etcd', async (t) => {
  const c = t.context;
  const ks = await spawnKeyService([...c.base, ...c.good]);
  try {
    const r = await attestSteps({ url: ks.listening, fingerprint: ks.fingerprint, timeoutMs: 15_000 }, c.tpm, { diskUuid: DISK, eventLog: c.eventLog });
    // The key the master secret derives for this disk (openssl's HKDF, the independent oracle).
    const st = await openStateDir(c.state);
    t.is(Buffer.from(r.secrets.diskKey, 'base64').toString('hex'), await opensslHkdf(st.masterSecret, st.salt, 'key-' + DISK));
    st.masterSecret.fill(0);
  } finally {
    await ks.stop();
  }
  // Read back over TLS by an independent client: the binding and the release record are there.
  const keys = await etcdctl(c, c.etcd.endpoints[0], true, 'get', '--prefix', 'sextant/binding/', '--keys-only');
  t.deepEqual(keys.stdout.split('\n').filter(Boolean), [`sextant/binding/${DISK}/0000000001`]);
  const v = await execa(process.execPath, [SEXTANT_BIN, 'keyservice', 'audit', 'verify', ...c.good, '--json'], { reject: false });
  t.is(v.exitCode, 0, String(v.stdout));
  t.true((JSON.parse(String(v.stdout)) as { records: number }).records >= 3);
  // Without TLS the member answers nothing: the data did go over TLS.
  const clear = await run('etcdctl', ['--endpoints', c.etcd.endpoints[0].replace('https:', 'http:'), '--dial-timeout', '1s', '--command-timeout', '2s', 'get', '--prefix', 'sextant/'], { env: { ETCDCTL_API: '3' } }).catch((e: unknown) => e);
  t.true(clear instanceof Error);
});

test.serial('a wrong --etcd-ca: the service does not start, STORE_TLS_FAILED says the certificate does not chain to it', async (t) => {
  const c = t.context;
  const r = await refusedStart([...c.base, '--store', 'etcd', '--etcd-endpoints', c.etcd.endpoints[0], '--etcd-ca', c.pki.otherCa, '--etcd-cert', c.pki.clientCert, '--etcd-key', c.pki.clientKey]);
  t.is(r.code, 'STORE_TLS_FAILED', r.message);
  t.is(r.exitCode, 1);
  t.regex(r.message, /does not chain to --etcd-ca/);
  t.regex(r.message, new RegExp(c.etcd.endpoints[0].replace(/[.]/g, '\\.')));
  t.log(`refused in ${r.ms} ms: ${r.message}`);
});

test.serial('no client certificate where etcd requires one: STORE_TLS_FAILED says to give --etcd-cert/--etcd-key', async (t) => {
  const c = t.context;
  const r = await refusedStart([...c.base, '--store', 'etcd', '--etcd-endpoints', c.etcd.endpoints[0], '--etcd-ca', c.pki.ca]);
  t.is(r.code, 'STORE_TLS_FAILED', r.message);
  t.regex(r.message, /requires a client certificate: give --etcd-cert and --etcd-key/);
  t.log(`refused in ${r.ms} ms: ${r.message}`);
});

test.serial('a client certificate of another CA: STORE_TLS_FAILED says etcd refused it', async (t) => {
  const c = t.context;
  const r = await refusedStart([...c.base, '--store', 'etcd', '--etcd-endpoints', c.etcd.endpoints[0], '--etcd-ca', c.pki.ca, '--etcd-cert', c.pki.otherClientCert, '--etcd-key', c.pki.otherClientKey]);
  t.is(r.code, 'STORE_TLS_FAILED', r.message);
  t.regex(r.message, /refused our client certificate/);
});

test.serial('an https:// URL of a plaintext etcd: STORE_TLS_FAILED, no fallback to plaintext, nothing written there', async (t) => {
  const c = t.context;
  const https = c.plain.endpoints[0].replace('http:', 'https:');
  const r = await refusedStart([...c.base, '--store', 'etcd', '--etcd-endpoints', https, '--etcd-ca', c.pki.ca, '--etcd-cert', c.pki.clientCert, '--etcd-key', c.pki.clientKey]);
  t.is(r.code, 'STORE_TLS_FAILED', r.message);
  t.regex(r.message, /handshake did not complete/);
  const keys = await etcdctl(c, c.plain.endpoints[0], false, 'get', '--prefix', '', '--keys-only');
  t.is(keys.stdout.trim(), '', 'the plaintext etcd holds nothing');
});

test.serial('http:// endpoints with TLS options, mixed schemes, a certificate without its key or CA: USAGE (flags and --config)', async (t) => {
  const c = t.context;
  const http = c.etcd.endpoints[0].replace('https:', 'http:');
  const cases: [string, string[], RegExp, string?][] = [
    ['http with TLS options', ['--etcd-endpoints', http, '--etcd-ca', c.pki.ca, '--etcd-cert', c.pki.clientCert, '--etcd-key', c.pki.clientKey], /must then be https/],
    ['mixed schemes', ['--etcd-endpoints', `${c.etcd.endpoints[0]},${c.plain.endpoints[0]}`, '--etcd-ca', c.pki.ca], /mixes http:\/\/ and https:\/\//],
    ['https without a CA', ['--etcd-endpoints', c.etcd.endpoints[0]], /need --etcd-ca/],
    ['a certificate without a CA', ['--etcd-endpoints', c.etcd.endpoints[0], '--etcd-cert', c.pki.clientCert, '--etcd-key', c.pki.clientKey], /need --etcd-ca/],
    ['a certificate without its key', ['--etcd-endpoints', c.etcd.endpoints[0], '--etcd-ca', c.pki.ca, '--etcd-cert', c.pki.clientCert], /cert and key together/, 'CONFIG_INVALID'],
  ];
  for (const [what, args, re, code = 'USAGE'] of cases) {
    const r = await refusedStart([...c.base, '--store', 'etcd', ...args]);
    t.is(r.code, code, `${what}: ${r.message}`);
    t.is(r.exitCode, 2, what);
    t.regex(r.message, re, what);
  }
  const config = path.join(c.dir, 'http-tls.json');
  await writeFile(config, JSON.stringify({ store: 'etcd', etcd: { endpoints: [http], tls: { ca: c.pki.ca, cert: c.pki.clientCert, key: c.pki.clientKey } } }));
  const r = await refusedStart([...c.base, '--config', config]);
  t.is(r.code, 'USAGE', r.message);
  // The admin commands take the same options and the same check.
  const v = await execa(process.execPath, [SEXTANT_BIN, 'keyservice', 'audit', 'verify', '--store', 'etcd', '--etcd-endpoints', http, '--etcd-ca', c.pki.ca, '--json'], { reject: false });
  t.is(v.exitCode, 2);
  t.is((JSON.parse(String(v.stdout)) as { code: string }).code, 'USAGE');
});
