import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../../lib/exec.js';
import { newKubeletKey } from '../../../agent/join/kubelet-csr.js';
import { makeClusterCa } from '../../helpers/cluster-ca.js';
import { tempDir } from '../disk/images.js';

test('the hand-built PKCS#10 request verifies with openssl and names system:node:<name> in system:nodes', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const k = newKubeletKey('worker-3');
  const csr = path.join(dir, 'k.csr');
  await writeFile(csr, k.csrPem);
  const r = await run('openssl', ['req', '-in', csr, '-verify', '-noout', '-subject', '-nameopt', 'RFC2253']);
  t.regex(r.stdout + r.stderr, /verify OK/i);
  t.regex(r.stdout, /subject=CN=system:node:worker-3,O=system:nodes/);
  // The request's public key is the key we keep.
  await writeFile(path.join(dir, 'k.key'), k.keyPem);
  const fromCsr = await run('openssl', ['req', '-in', csr, '-noout', '-pubkey']);
  const fromKey = await run('openssl', ['pkey', '-in', path.join(dir, 'k.key'), '-pubout']);
  t.is(fromCsr.stdout, fromKey.stdout);
});

test('the key service issues a certificate for it that matches the agent\'s key', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const ca = await makeClusterCa(dir);
  const k = newKubeletKey('worker-4');
  const cert = await (await ca.load()).issueKubeletCert(k.csrPem, 'worker-4', 1, new Date());
  await writeFile(path.join(dir, 'kubelet.crt'), cert);
  await writeFile(path.join(dir, 'kubelet.key'), k.keyPem);
  // openssl x509 -noout -pubkey vs the key's public half
  const a = await run('openssl', ['x509', '-in', path.join(dir, 'kubelet.crt'), '-noout', '-pubkey']);
  const b = await run('openssl', ['pkey', '-in', path.join(dir, 'kubelet.key'), '-pubout']);
  t.is(a.stdout, b.stdout);
  const v = await run('openssl', ['verify', '-CAfile', ca.caCert, path.join(dir, 'kubelet.crt')]);
  t.regex(v.stdout, /: OK/);
});
