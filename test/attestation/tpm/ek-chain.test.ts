import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { FIXTURES } from '../../helpers/paths.js';
import { verifyEkCert, loadCaCertificates } from '../../../attestation/tpm/ek-chain.js';
import { run } from '../../../lib/exec.js';

// A real swtpm EK certificate (swtpm_localca: root -> intermediate -> EK); `openssl verify` accepts the chain.
const dir = path.join(FIXTURES, 'keyservice/swtpm-a');
const load = async () => ({
  ek: await readFile(path.join(dir, 'ek.der')),
  root: new X509Certificate(await readFile(path.join(dir, 'ca.pem'))),
  issuer: new X509Certificate(await readFile(path.join(dir, 'issuer.pem'))),
});
const now = new Date('2027-01-01T00:00:00Z');

test('an EK certificate chains to the configured root through the intermediate', async (t) => {
  const { ek, root, issuer } = await load();
  t.notThrows(() => verifyEkCert(ek, [root, issuer], now));
  t.notThrows(() => verifyEkCert(ek, [root], now, [issuer.raw]));
  t.notThrows(() => verifyEkCert(ek, [issuer], now));
});

test('missing intermediate, unknown CA, or outside validity: EK_CERT_UNTRUSTED', async (t) => {
  const { ek, root } = await load();
  t.throws(() => verifyEkCert(ek, [root], now), { code: 'EK_CERT_UNTRUSTED' } as never);
  const other = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=swtpm-localca', '-days', '1']);
  t.throws(() => verifyEkCert(ek, loadCaCertificates([other.stdout]), now), { code: 'EK_CERT_UNTRUSTED' } as never);
  t.throws(() => verifyEkCert(ek, [root], new Date('2020-01-01T00:00:00Z'), []), { code: 'EK_CERT_UNTRUSTED' } as never);
  t.throws(() => verifyEkCert(Buffer.from('not a cert'), [root], now), { code: 'EK_CERT_UNTRUSTED' } as never);
});

test('a chain certificate that is not a CA is not used as an intermediate', async (t) => {
  const { ek, root } = await load();
  // The EK certificate itself is not a CA: offering it as its own intermediate changes nothing.
  t.throws(() => verifyEkCert(ek, [root], now, [ek]), { code: 'EK_CERT_UNTRUSTED' } as never);
});
