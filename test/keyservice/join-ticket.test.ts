import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { caCertHash, issueKubeletCert, makeJoinTicket, newBootstrapToken } from '../../keyservice/join-ticket.js';
import { run } from '../../lib/exec.js';
import { makeClusterCa } from '../helpers/cluster-ca.js';

test('bootstrap tokens have the kubeadm shape and differ', (t) => {
  const a = newBootstrapToken();
  t.regex(a, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
  t.not(a, newBootstrapToken());
});

test('the discovery hash equals the openssl pipeline kubeadm documents', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-join-'));
  const ca = await makeClusterCa(dir);
  // openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum  (kubeadm docs)
  const pub = await run('openssl', ['x509', '-pubkey', '-noout', '-in', ca.caCert]);
  const der = await run('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: pub.stdout, binary: true });
  const sum = await run('sha256sum', [], { input: der.stdoutBytes });
  t.is(caCertHash(await readFile(ca.caCert, 'utf8')), 'sha256:' + sum.stdout.split(' ')[0]);
  await rm(dir, { recursive: true });
});

test('the kubelet certificate is issued by the cluster CA as system:node:<name>, whatever the CSR asked for', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-join-'));
  const ca = await makeClusterCa(dir);
  const certPem = await readFile(ca.caCert, 'utf8');
  const ticket = await makeJoinTicket({ apiServerEndpoint: '10.0.0.1:6443', tokenTtlSeconds: 600, certDays: 1, ca: { certPem, keyFile: ca.caKey } }, 'worker-7', ca.csr, new Date('2030-01-01T00:00:00Z'));
  t.is(ticket.tokenExpiresAt, '2030-01-01T00:10:00.000Z');
  await writeFile(path.join(dir, 'kubelet.crt'), ticket.kubeletCert!);
  const v = await run('openssl', ['verify', '-CAfile', ca.caCert, '-purpose', 'sslclient', path.join(dir, 'kubelet.crt')]);
  t.regex(v.stdout, /OK/);
  const subj = await run('openssl', ['x509', '-in', path.join(dir, 'kubelet.crt'), '-noout', '-subject', '-nameopt', 'RFC2253']);
  t.is(subj.stdout.trim(), 'subject=CN=system:node:worker-7,O=system:nodes');
  await rm(dir, { recursive: true });
});

test('a CSR with a broken signature is refused', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-join-'));
  const ca = await makeClusterCa(dir);
  // Flip the last DER byte: it lies in the ECDSA signature's s integer, so the CSR still
  // parses and only the signature is wrong (a random base64 edit could break the DER instead).
  const der = Buffer.from(ca.csr.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  der[der.length - 1] ^= 0x01;
  const broken = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`.replace(/\n\n/g, '\n');
  await t.throwsAsync(issueKubeletCert({ certPem: await readFile(ca.caCert, 'utf8'), keyFile: ca.caKey }, broken, 'worker-1', 1), { code: 'PROTOCOL_INVALID' });
  await rm(dir, { recursive: true });
});
