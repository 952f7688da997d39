/**
 * The key service's EK certificate check on certificates issued for real TPMs (Debian
 * packages, test/helpers/real-tpm-certs.ts): chain to the real root, the TPM named from the
 * SAN, refusals that say which issuer is missing, and the quirks of real certificates
 * (empty subject, critical SAN with one multi-valued RDN, critical certificate policies,
 * NV padding and the TCG 1.2 NV header, non-minimal DER lengths).
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KeyServiceAttestor } from '../../keyservice/attestor.js';
import { AuditLog, readAuditRecords } from '../../keyservice/audit/log.js';
import { loadEkRootStore } from '../../keyservice/ek-roots/store.js';
import { NonceStore } from '../../keyservice/nonce-store.js';
import { verifyEkCert } from '../../attestation/tpm/ek-chain.js';
import { tpmIdentity, vendorName } from '../../attestation/tpm/ek-identity.js';
import { codecTpmChecks } from '../../attestation/tpm/codec-checks.js';
import { loadEvidence } from '../helpers/record-evidence.js';
import { microsoftTpmChains, vendorCaFiles } from '../helpers/real-tpm-certs.js';

async function world() {
  const { files, dir } = await vendorCaFiles();
  const msRoot = files.find((f) => f.rel.startsWith('Microsoft/'))!.cert;
  return { msRoot, chains: await microsoftTpmChains(msRoot), dir };
}
// Inside every recorded chain's validity (the Microsoft intermediates end in June 2027, the recorded swtpm CA in late December 2026).
const at = new Date('2026-12-10T00:00:00Z');

test('real Microsoft-issued TPM certificates chain to Microsoft TPM Root CA 2014 through the sent intermediate; the TPMs are Nuvoton NPCT75x', async (t) => {
  const { msRoot, chains } = await world();
  t.is(chains.length, 2);
  // The version as each certificate writes it: the TCG form (major, minor as 16-bit hex each),
  // and a short "id:72" that is not a 32-bit ID (kept as written, no firmware number guessed).
  const versions = [
    { version: 'id:00070002', firmware: '7.2' },
    { version: 'id:72', firmware: undefined },
  ];
  for (const [i, c] of chains.entries()) {
    t.is(c.leaf.subject as string | undefined, undefined, 'empty subject: the identity is only in the SAN');
    const v = verifyEkCert(c.leaf.raw, [msRoot], at, [c.intermediate.raw]);
    t.is(v.anchor, msRoot);
    t.deepEqual(v.path.map((p) => p.fingerprint256), [c.intermediate.fingerprint256]);
    t.deepEqual(v.tpm, { manufacturerId: 'id:4E544300', manufacturer: 'Nuvoton', model: 'NPCT75x', ...versions[i] }, c.source);
  }
});

test('a real chain that does not lead to a configured root: EK_CERT_UNTRUSTED naming the missing issuer and where it is published', async (t) => {
  const { msRoot, chains, dir } = await world();
  const vendors = await loadEkRootStore('tpm-vendors', [dir]);
  const c = chains[0];
  // The vendor store has no Microsoft root: the intermediate is sent, but leads nowhere.
  const e1 = t.throws(() => verifyEkCert(c.leaf.raw, vendors.anchors, at, [c.intermediate.raw]), { code: 'EK_CERT_UNTRUSTED' });
  t.regex(e1.message, /through 1 sent intermediate.*issuer "C=US, ST=Washington, L=Redmond, O=Microsoft Corporation, CN=Microsoft TPM Root Certificate Authority 2014"/);
  // The root is configured but the node did not send the intermediate: the refusal says where its issuer's certificate is.
  const e2 = t.throws(() => verifyEkCert(c.leaf.raw, [msRoot], at), { code: 'EK_CERT_UNTRUSTED' });
  t.regex(e2.message, /no configured or sent CA issued "\(empty\)" \(issuer "CN=EUS-NTC-KEYID-[0-9A-F]{40}"\); its issuer's certificate is published at http:\/\/azcsprodeusaikpublish\.blob\.core\.windows\.net\//);
  // After the intermediates' end of validity the chain is refused even with everything present.
  t.throws(() => verifyEkCert(c.leaf.raw, [msRoot], new Date('2027-07-01T00:00:00Z'), [c.intermediate.raw]), { code: 'EK_CERT_UNTRUSTED', message: /outside its validity/ });
});

test('what TPMs store around the certificate in NV, and non-minimal DER lengths, do not change the verdict', async (t) => {
  const { msRoot, chains } = await world();
  const der = chains[0].leaf.raw;
  const intermediate = [chains[0].intermediate.raw];
  const padded = Buffer.concat([der, Buffer.alloc(300, 0xff)]);
  const tcg12 = Buffer.concat([Buffer.from([0x10, 0x01, 0x00, der.length >> 8, der.length & 0xff]), der, Buffer.alloc(40)]);
  // 30 82 LL LL -> 30 83 00 LL LL: a BER length some provisioning tools write; the signature covers the TBS, not this header.
  const nonMinimal = Buffer.concat([Buffer.from([0x30, 0x83, 0x00]), der.subarray(2)]);
  for (const [name, bytes] of Object.entries({ padded, tcg12, nonMinimal })) {
    const v = verifyEkCert(bytes, [msRoot], at, intermediate);
    t.is(v.tpm?.model, 'NPCT75x', name);
  }
  // A changed byte inside the signed part is a signature failure, however it is wrapped.
  const tampered = Buffer.from(der);
  tampered[der.length - 300] ^= 1;
  t.throws(() => verifyEkCert(Buffer.concat([tampered, Buffer.alloc(10)]), [msRoot], at, intermediate), { code: 'EK_CERT_UNTRUSTED' });
});

test('the audit record of round 1 names the TPM: Nuvoton NPCT75x for the real certificate, swtpm for swtpm', async (t) => {
  const { msRoot, chains } = await world();
  const ev = await loadEvidence();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ek-real-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const audit = await AuditLog.open(path.join(dir, 'audit.log'));
  const { X509Certificate } = await import('node:crypto');
  const attestor = new KeyServiceAttestor({
    ekCas: [msRoot, new X509Certificate(ev.ekRoot)],
    tpm: codecTpmChecks,
    nonces: new NonceStore(),
    references: () => [],
    masterSecret: Buffer.alloc(32, 1),
    salt: Buffer.alloc(32, 2),
    audit,
    now: () => at,
  });
  const c = chains[0];
  // Round 1 needs only the EK's public key (MakeCredential): the real certificate's RSA key.
  await attestor.challenge({ v: 1, ekCert: c.leaf.raw.toString('base64'), ekChain: [c.intermediate.raw.toString('base64')], akPublic: ev.akPublic }, 'test');
  await attestor.challenge({ v: 1, ekCert: ev.ekCert, ekChain: [Buffer.from(new X509Certificate(ev.ekIssuer).raw).toString('base64')], akPublic: ev.akPublic }, 'test');
  await t.throwsAsync(attestor.challenge({ v: 1, ekCert: c.leaf.raw.toString('base64'), akPublic: ev.akPublic }, 'test'), { code: 'EK_CERT_UNTRUSTED' });
  await audit.close();
  const records = (await readAuditRecords(path.join(dir, 'audit.log'))) as Record<string, any>[];
  const [real, swtpm, refused] = records.filter((r) => r.round === 1);
  t.like(real, { decision: 'challenge', ekTpm: { manufacturer: 'Nuvoton', model: 'NPCT75x', firmware: '7.2' }, ekAnchor: { subject: 'C=US, ST=Washington, L=Redmond, O=Microsoft Corporation, CN=Microsoft TPM Root Certificate Authority 2014' }, ekPathLength: 1 });
  t.like(swtpm, { decision: 'challenge', ekTpm: { manufacturerId: 'id:00001014', manufacturer: 'id:00001014', model: 'swtpm', version: 'id:20191023' } });
  t.like(refused, { decision: 'refuse', stage: 'verifyEkCert', code: 'EK_CERT_UNTRUSTED' });
});

test('TCG vendor IDs: registered ones by name, others by their letters; a certificate without a TPM SAN names none', async (t) => {
  t.is(vendorName('id:49465800'), 'Infineon');
  t.is(vendorName('id:53544D20'), 'STMicroelectronics');
  t.is(vendorName('id:494E5443'), 'Intel');
  t.is(vendorName('id:414D4400'), 'AMD');
  t.is(vendorName('id:58595A00'), 'XYZ');
  t.is(vendorName('id:00001014'), 'id:00001014');
  t.is(vendorName('Infineon'), 'Infineon');
  const { msRoot } = await world();
  t.is(tpmIdentity(msRoot), undefined);
});
