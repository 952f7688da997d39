import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { FIXTURES } from '../../helpers/paths.js';
import { EkChainCache, verifyEkCert, loadCaCertificates } from '../../../attestation/tpm/ek-chain.js';
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
test('EkChainCache: a verified chain is remembered (the same certificate object back), refusals are not, and a remembered chain outside its validity is refused', async (t) => {
  const { ek, root, issuer } = await load();
  const cache = new EkChainCache([root], 2);
  const a = cache.verify(ek, now, [issuer.raw]);
  t.is(cache.verify(ek, now, [issuer.raw]), a, 'a hit hands back the verified certificate');
  t.is(cache.size, 1);
  // The same EK certificate without its intermediate is another chain: verified on its own, refused.
  t.throws(() => cache.verify(ek, now), { code: 'EK_CERT_UNTRUSTED' } as never);
  t.throws(() => cache.verify(ek, now), { code: 'EK_CERT_UNTRUSTED' } as never);
  t.is(cache.size, 1, 'refusals are not kept');
  // Past the path's validity (the EK certificate's, the intermediate's or the root's, whichever ends first): refused.
  const end = Math.min(...[new X509Certificate(ek), issuer, root].map((c) => Date.parse(c.validTo)));
  t.throws(() => cache.verify(ek, new Date(end + 1000), [issuer.raw]), { code: 'EK_CERT_UNTRUSTED' } as never);
  t.throws(() => cache.verify(ek, new Date('2020-01-01T00:00:00Z'), [issuer.raw]), { code: 'EK_CERT_UNTRUSTED' } as never);
  // Caches are per set of anchors: one that trusts the intermediate accepts the bare EK
  // certificate; another that trusts only the root still refuses it.
  new EkChainCache([root, issuer], 2).verify(ek, now);
  t.throws(() => new EkChainCache([root], 2).verify(ek, now), { code: 'EK_CERT_UNTRUSTED' } as never);
});

test('EkChainCache is bounded: the least recently used chain goes first', async (t) => {
  const { ek, root, issuer } = await load();
  const cache = new EkChainCache([root, issuer], 1);
  const a = cache.verify(ek, now);
  cache.verify(ek, now, [issuer.raw]); // another key: evicts the first
  t.is(cache.size, 1);
  t.not(cache.verify(ek, now), a, 'verified again after eviction');
});
