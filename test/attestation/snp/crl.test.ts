import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAmdCert, splitCertificates } from '../../../attestation/snp/certs.js';
import type { VerifiedChain } from '../../../attestation/snp/chain.js';
import { checkRevocation, parseCrl } from '../../../attestation/snp/crl.js';
import { verifySnpAuthenticity } from '../../../attestation/snp/verify.js';
import { snpEvidence } from '../../helpers/snp-evidence.js';

// No CRL signed by a real ARK is available offline, so the revocation mechanics run on an
// RSA-PSS hierarchy that openssl (the oracle) makes in the shape of AMD's: an ARK, an ASK it
// certifies, and `openssl ca -gencrl` CRLs with SHA-384, salt 48, as AMD KDS publishes them.

const PSS = ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:48'];
let dir: string;
const p = (f: string): string => path.join(dir, f);
const ossl = (...args: string[]) => execa('openssl', args, { cwd: dir });

async function makeCa(name: string): Promise<void> {
  await ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-subj', `/CN=ARK-${name}`, '-days', '30', '-sha384', ...PSS);
}

async function gencrl(ca: string, out: string, index: string, days = '7'): Promise<Buffer> {
  await writeFile(p(`${out}.index`), index);
  await writeFile(p(`${out}.cnf`), `[ca]\ndefault_ca=d\n[d]\ndatabase=${p(`${out}.index`)}\ncrlnumber=${p(`${out}.num`)}\ndefault_md=sha384\n`);
  await writeFile(p(`${out}.num`), '01\n');
  await ossl('ca', '-config', `${out}.cnf`, '-gencrl', '-keyfile', `${ca}.key`, '-cert', `${ca}.pem`, '-out', `${out}.crl`, '-crldays', days, '-md', 'sha384', ...PSS);
  return readFile(p(`${out}.crl`));
}

const load = async (f: string) => parseAmdCert(splitCertificates(await readFile(p(f)), f)[0], f);

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sextant-snp-crl-'));
  await makeCa('Test');
  await makeCa('Other');
  await ossl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ask.key', '-out', 'ask.csr', '-subj', '/CN=SEV-Test');
  await ossl('x509', '-req', '-in', 'ask.csr', '-CA', 'Test.pem', '-CAkey', 'Test.key', '-set_serial', '0x10001', '-days', '20', '-out', 'ask.pem', '-sha384', ...PSS);
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('revocation: the ARK-signed CRL is parsed and checked; a revoked ASK, a foreign or stale CRL refuse', async (t) => {
  const ark = await load('Test.pem');
  const ask = await load('ask.pem');
  const chain = { ark, intermediate: ask } as VerifiedChain;
  const now = new Date();
  const revokedAt = now.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  const empty = await gencrl('Test', 'empty', '');
  const revoking = await gencrl('Test', 'revoking', `R\t491231235959Z\t${revokedAt}\t010001\tunknown\t/CN=SEV-Test\n`);
  const foreign = await gencrl('Other', 'foreign', '');
  // openssl itself accepts the CRLs as signed by their CA.
  await t.notThrowsAsync(ossl('crl', '-in', 'revoking.crl', '-CAfile', 'Test.pem', '-noout'));

  const parsed = parseCrl(revoking);
  t.deepEqual([...parsed.revoked], ['010001']);
  t.true(parsed.nextUpdate! > now);
  t.notThrows(() => checkRevocation(empty, chain, now));
  t.throws(() => checkRevocation(revoking, chain, now), { code: 'SNP_CERT_REVOKED' });
  t.throws(() => checkRevocation(foreign, chain, now), { code: 'SNP_CRL_INVALID', message: /not issued by ARK-Test/ });
  const later = new Date(now.getTime() + 8 * 86400_000);
  t.throws(() => checkRevocation(empty, chain, later), { code: 'SNP_CRL_INVALID', message: /expired/ });
  // DER works like PEM; one changed byte of the DER signature is refused.
  const der = Buffer.from(empty.toString('latin1').replace(/-----[A-Z0-9 ]+-----|\s/g, ''), 'base64');
  t.notThrows(() => checkRevocation(der, chain, now));
  const tampered = Buffer.from(der);
  tampered[tampered.length - 10] ^= 1;
  t.throws(() => checkRevocation(tampered, chain, now), { code: 'SNP_CRL_INVALID', message: /signature/ });
  t.throws(() => checkRevocation(Buffer.from('-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'), chain, now), { code: 'SNP_CRL_MALFORMED' });
});

test('revocation in the verifier: a CRL not issued by the real ARK-Milan refuses the real report', async (t) => {
  const e = (await snpEvidence()).goSev;
  const crl = await gencrl('Test', 'milan', '');
  t.throws(() => verifySnpAuthenticity(e.report, { signerCert: e.vcek, chain: e.chain, crl }), { code: 'SNP_CRL_INVALID', message: /not issued by ARK-Milan/ });
});
