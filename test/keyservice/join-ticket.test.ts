import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeJoinTicket, newBootstrapToken } from '../../keyservice/join-ticket.js';
import { ClusterCa } from '../../keyservice/kubelet-cert.js';
import { DerReader } from '../../lib/der.js';
import { run } from '../../lib/exec.js';
import { makeClusterCa } from '../helpers/cluster-ca.js';

async function world(t: { teardown: (f: () => Promise<void>) => void }, keyType: 'ec' | 'rsa' = 'ec') {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-join-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return { dir, ...(await makeClusterCa(dir, keyType)) };
}

/** Issuer and subject Name DER of a certificate (TBSCertificate fields 4 and 6). */
function names(pem: string): { issuer: Buffer; subject: Buffer } {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const tbs = DerReader.of(new DerReader(der, 'PROTOCOL_INVALID').next(0x30), 'PROTOCOL_INVALID').next(0x30);
  const r = DerReader.of(tbs, 'PROTOCOL_INVALID');
  if (r.next().tag === 0xa0) r.next(0x02); // [0] version, then the serial
  r.next(0x30); // signature algorithm
  const issuer = r.next(0x30).raw;
  r.next(0x30); // validity
  return { issuer, subject: r.next(0x30).raw };
}

test('bootstrap tokens have the kubeadm shape and differ', (t) => {
  const a = newBootstrapToken();
  t.regex(a, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
  t.not(a, newBootstrapToken());
});

test('the discovery hash equals the openssl pipeline kubeadm documents', async (t) => {
  const w = await world(t);
  // openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum  (kubeadm docs)
  const pub = await run('openssl', ['x509', '-pubkey', '-noout', '-in', w.caCert]);
  const der = await run('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: pub.stdout, binary: true });
  const sum = await run('sha256sum', [], { input: der.stdoutBytes });
  t.is((await w.load()).caCertHash, 'sha256:' + sum.stdout.split(' ')[0]);
});

for (const keyType of ['ec', 'rsa'] as const) {
  test(`an ${keyType.toUpperCase()} cluster CA issues the kubelet certificate as system:node:<name>, client auth only, whatever the CSR asked for (openssl verifies)`, async (t) => {
    const w = await world(t, keyType);
    const ticket = await makeJoinTicket({ apiServerEndpoint: '10.0.0.1:6443', tokenTtlSeconds: 600, certDays: 1, ca: await w.load() }, 'worker-7', w.csr, new Date());
    const crt = path.join(w.dir, 'kubelet.crt');
    await writeFile(crt, ticket.kubeletCert!);
    const v = await run('openssl', ['verify', '-CAfile', w.caCert, '-purpose', 'sslclient', crt]);
    t.regex(v.stdout, /: OK/);
    // Not a server certificate, not a CA.
    await t.throwsAsync(run('openssl', ['verify', '-CAfile', w.caCert, '-purpose', 'sslserver', crt]));
    const text = (await run('openssl', ['x509', '-in', crt, '-noout', '-text', '-nameopt', 'RFC2253'])).stdout;
    t.regex(text, /Subject: CN=system:node:worker-7,O=system:nodes\n/);
    t.regex(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE/);
    t.regex(text, /X509v3 Key Usage: critical\n\s+Digital Signature\n/);
    t.regex(text, /X509v3 Extended Key Usage: \n\s+TLS Web Client Authentication\n/);
    t.regex(text, new RegExp(`Signature Algorithm: ${keyType === 'ec' ? 'ecdsa-with-SHA256' : 'sha256WithRSAEncryption'}`));
    // The certificate's key is the CSR's.
    const fromCert = await run('openssl', ['x509', '-in', crt, '-noout', '-pubkey']);
    const fromCsr = await run('openssl', ['req', '-in', path.join(w.dir, 'node.csr'), '-noout', '-pubkey']);
    t.is(fromCert.stdout, fromCsr.stdout);
    // The issuer is the CA's subject byte for byte (Go's chain builder compares raw names).
    t.deepEqual(names(ticket.kubeletCert!).issuer, names(await readFile(w.caCert, 'utf8')).subject);
  });
}

test('the certificate is valid from the release for certDays, with a positive 16-byte serial', async (t) => {
  const w = await world(t);
  const now = new Date('2030-01-01T00:00:00Z');
  const pem = await (await w.load()).issueKubeletCert(w.csr, 'worker-1', 3, now);
  const crt = path.join(w.dir, 'k.crt');
  await writeFile(crt, pem);
  const out = (await run('openssl', ['x509', '-in', crt, '-noout', '-startdate', '-enddate', '-serial'])).stdout;
  t.regex(out, /notBefore=Jan  1 00:00:00 2030 GMT/);
  t.regex(out, /notAfter=Jan  4 00:00:00 2030 GMT/);
  t.regex(out, /serial=[1-7][0-9A-F]{31}\n/);
});

test('a CSR with a broken signature is refused', async (t) => {
  const w = await world(t);
  // Flip the last DER byte: it lies in the ECDSA signature's s integer, so the CSR still
  // parses and only the signature is wrong (a random base64 edit could break the DER instead).
  const der = Buffer.from(w.csr.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  der[der.length - 1] ^= 0x01;
  const broken = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`.replace(/\n\n/g, '\n');
  const ca = await w.load();
  await t.throwsAsync(ca.issueKubeletCert(broken, 'worker-1', 1, new Date()), { code: 'PROTOCOL_INVALID' });
  await t.throwsAsync(ca.issueKubeletCert('-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n', 'worker-1', 1, new Date()), { code: 'PROTOCOL_INVALID' });
});

test('a CA key that is not the CA certificate\'s, or not a key, stops the start (CONFIG_INVALID)', async (t) => {
  const a = await world(t);
  const b = await world(t);
  await t.throwsAsync(ClusterCa.load(a.caCert, b.caKey), { code: 'CONFIG_INVALID', message: /does not belong/ });
  await t.throwsAsync(ClusterCa.fromPem(await readFile(a.caCert, 'utf8'), Buffer.from('not a key')), { code: 'CONFIG_INVALID' });
  await t.throwsAsync(ClusterCa.load(a.caCert, path.join(a.dir, 'missing.key')), { code: 'FILE_NOT_FOUND' });
});
