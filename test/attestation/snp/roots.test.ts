import test from 'ava';
import { X509Certificate, createHash } from 'node:crypto';
import { parseSignerCert } from '../../../attestation/snp/certs.js';
import { verifyChain } from '../../../attestation/snp/chain.js';
import { PINNED_AMD_ROOTS } from '../../../attestation/snp/roots.js';
import { snpEvidence } from '../../helpers/snp-evidence.js';

const pemCerts = (b: Buffer): X509Certificate[] =>
  (b.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
const fp = (c: X509Certificate): string => createHash('sha256').update(c.raw).digest('hex');

test('every pinned ARK fingerprint is the SHA-256 of the ARK Debian ships, self-signed, with its name and expiry', async (t) => {
  const v = (await snpEvidence()).virtee;
  t.deepEqual(PINNED_AMD_ROOTS.map((r) => r.product), ['Milan', 'Genoa', 'Turin']);
  for (const root of PINNED_AMD_ROOTS) {
    const [ark] = pemCerts(await v.builtin(root.product.toLowerCase(), 'ark'));
    t.is(fp(ark), root.sha256, root.product);
    t.true(ark.verify(ark.publicKey), `${root.product} ARK is self-signed`);
    t.regex(ark.subject, new RegExp(`^CN=${root.commonName}$`, 'm'));
    t.is(new Date(ark.validTo).toISOString().replace('.000', ''), root.notAfter);
    // The ASK Debian ships beside it is signed by this ARK.
    const [ask] = pemCerts(await v.builtin(root.product.toLowerCase(), 'ask'));
    t.true(ask.verify(ark.publicKey), `${root.product} ASK is signed by the pinned ARK`);
  }
});

test("go-sev-guest's Milan VCEK and VLEK chains end in the same pinned Milan ARK", async (t) => {
  const g = (await snpEvidence()).goSev;
  const milan = PINNED_AMD_ROOTS.find((r) => r.product === 'Milan')!;
  for (const chain of [g.chain, g.vlekChain]) {
    const [inter, ark] = pemCerts(chain);
    t.is(fp(ark), milan.sha256);
    t.true(inter.verify(ark.publicKey));
  }
  t.regex(pemCerts(g.vlekChain)[0].subject, /^CN=SEV-VLEK-Milan$/m);
});

test("virtee's real Turin VCEK chains to the pinned Turin ARK; its TCB has the FMC SPL and an 8-byte hwID", async (t) => {
  const v = (await snpEvidence()).virtee;
  const vcek = parseSignerCert(v.turinVcek);
  const chain = verifyChain(vcek, v.turinChain, PINNED_AMD_ROOTS);
  t.is(chain.product, 'Turin');
  t.is(chain.intermediate.commonName, 'SEV-Turin');
  t.is(vcek.productName, 'Turin');
  t.is(vcek.hwId?.length, 16);
  t.deepEqual(vcek.tcb, { fmc: 0, bootloader: 0, tee: 0, snp: 0, microcode: 9 });
  // The Milan chain does not certify it.
  t.throws(() => verifyChain(vcek, v.chain, PINNED_AMD_ROOTS), { code: 'SNP_CHAIN_INVALID' });
});
