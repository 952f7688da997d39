/**
 * The pinned EK CA stores (keyservice/ek-roots/) against the real vendor CA certificates
 * Debian ships in ruby-tpm-key-attestation 0.14.2-1 (sid), read at test time.
 */
import test from 'ava';
import { createHash, X509Certificate } from 'node:crypto';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EK_ROOT_STORES, loadEkRootStore } from '../../keyservice/ek-roots/store.js';
import { TPM_VENDORS } from '../../keyservice/ek-roots/tpm-vendors.js';
import { verifyEkCert } from '../../attestation/tpm/ek-chain.js';
import { run } from '../../lib/exec.js';
import { vendorCaFiles } from '../helpers/real-tpm-certs.js';

const sha256 = (c: X509Certificate) => createHash('sha256').update(c.raw).digest('hex');
const DEBIAN = 'debian:ruby-tpm-key-attestation 0.14.2-1 ';

test('every Debian-sourced pin is the SHA-256 of the file it names, and every vendor EK CA in the package is pinned', async (t) => {
  const { files } = await vendorCaFiles();
  const byRel = new Map(files.map((f) => [f.rel, f.cert]));
  const debianPins = TPM_VENDORS.certificates.flatMap((c) => c.sources.filter((s) => s.startsWith(DEBIAN)).map((s) => ({ pin: c, rel: s.slice(DEBIAN.length) })));
  t.true(debianPins.length >= 24);
  for (const { pin, rel } of debianPins) {
    const cert = byRel.get(rel);
    t.truthy(cert, rel);
    t.is(sha256(cert!), pin.sha256, rel);
    t.is(new Date(cert!.validTo).toISOString().replace('.000Z', 'Z'), pin.notAfter, rel);
  }
  // Microsoft's TPM root issues Windows AIK certificates, not EK certificates: left out on purpose.
  const unpinned = files.filter((f) => !debianPins.some((p) => p.rel === f.rel)).map((f) => f.rel);
  t.deepEqual(unpinned, ['Microsoft/RootCA/Microsoft TPM Root Certificate Authority 2014.cer']);
});

test('the vendor CAs as the key service uses them: every root verifies itself (SHA-1 ones too), every intermediate its root', async (t) => {
  const loaded = await loadEkRootStore('tpm-vendors', [(await vendorCaFiles()).dir]);
  const now = new Date('2028-01-01T00:00:00Z');
  const roots = loaded.anchors.filter((c) => c.checkIssued(c));
  const intermediates = loaded.anchors.filter((c) => !c.checkIssued(c));
  t.true(roots.length >= 20);
  for (const root of roots) t.notThrows(() => verifyEkCert(root.raw, [root], now), root.subject);
  // STM's RSA and ECC EK CAs under GlobalSign's TPM roots, Infineon's under VeriSign's.
  t.deepEqual(intermediates.map((c) => c.subject.match(/CN=(.*)/)![1]).sort(), ['IFX TPM EK Root CA', 'STM TPM ECC Root CA 01', 'STM TPM EK Root CA']);
  for (const ca of intermediates) {
    const v = verifyEkCert(ca.raw, roots, now);
    t.regex(v.anchor.subject, /GlobalSign|VeriSign/);
    // Without its root the same certificate has no path.
    t.throws(() => verifyEkCert(ca.raw, roots.filter((r) => r !== v.anchor), now), { code: 'EK_CERT_UNTRUSTED' });
  }
});

test('loading a store: only pinned certificates become anchors; what is missing is reported', async (t) => {
  const { dir } = await vendorCaFiles();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ek-store-'));
  t.teardown(() => rm(tmp, { recursive: true, force: true }));
  await cp(dir, path.join(tmp, 'certs'), { recursive: true });
  // An operator's (or attacker's) extra CA in the directory is not trusted: it is not pinned.
  const extra = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=Infineon OPTIGA(TM) RSA Root CA', '-days', '1']);
  await writeFile(path.join(tmp, 'certs', 'extra.pem'), extra.stdout);
  await writeFile(path.join(tmp, 'certs', 'README'), 'not a certificate');
  const loaded = await loadEkRootStore('tpm-vendors', [path.join(tmp, 'certs')]);
  t.is(loaded.found.length, 24);
  t.false(loaded.anchors.some((c) => c.subject.includes('Infineon OPTIGA(TM) RSA Root CA') && !c.subject.includes('OPTIGA(TM) Devices')));
  t.is(loaded.found.length + loaded.missing.length, TPM_VENDORS.certificates.length);
  t.true(loaded.missing.every((m) => m.sources.every((s) => s.startsWith('github:'))));

  await t.throwsAsync(loadEkRootStore('tpm-vendors', [tmp + '/nonexistent']), { code: 'CONFIG_INVALID' });
  await writeFile(path.join(tmp, 'only-extra.pem'), extra.stdout);
  await t.throwsAsync(loadEkRootStore('gcp-vtpm', [tmp]), { code: 'CONFIG_INVALID', message: /none of its 5 pinned certificates/ });
  await t.throwsAsync(loadEkRootStore('no-such-store'), { code: 'CONFIG_INVALID', message: /known: tpm-vendors, gcp-vtpm/ });
});

test('every pin in every store is well-formed and has a source', (t) => {
  for (const store of Object.values(EK_ROOT_STORES)) {
    t.regex(store.version, /^\d{4}-\d{2}-\d{2}$/);
    const fps = store.certificates.map((c) => c.sha256);
    t.is(new Set(fps).size, fps.length, store.name);
    for (const c of store.certificates) {
      t.regex(c.sha256, /^[0-9a-f]{64}$/);
      t.true(c.sources.length > 0 && c.sources.every((s) => /^(debian|github):\S+ /.test(s)), c.subject);
    }
  }
});
