import test from 'ava';
import fc from 'fast-check';
import { generateKeyPairSync } from 'node:crypto';
import { isSextantError } from '../../../lib/errors.js';
import { parseSignerCert, splitCertificates } from '../../../attestation/snp/certs.js';
import { parseCrl } from '../../../attestation/snp/crl.js';
import { decodeEvidence } from '../../../attestation/snp/evidence.js';
import { hclAround } from '../../helpers/snp-test-hierarchy.js';
import { HCL_MAGIC, hclAkPublicKey, parseHclReport, parseRuntimeClaims } from '../../../attestation/snp/hcl.js';
import { parseSnpReport } from '../../../attestation/snp/report.js';
import { verifySnpAuthenticity } from '../../../attestation/snp/verify.js';
import { snpEvidence } from '../../helpers/snp-evidence.js';

/** Only typed SNP errors (or success) may come out of a parser, whatever the bytes. */
function onlyTyped(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (isSextantError(e) && e.code.startsWith('SNP_')) return true;
    throw e;
  }
}

// hclAround (test/helpers/snp-test-hierarchy.ts) builds only the framing (Azure's layout); the SNP report inside is the real one.
const RUNTIME = Buffer.from(JSON.stringify({ keys: [{ kid: 'HCLAkPub', kty: 'RSA', e: 'AQAB', n: 'tyFq' }], 'vm-configuration': { 'secure-boot': true } }));

test('virtee real report decodes field by field (version 2, Milan layout, VCEK-signed)', async (t) => {
  const r = parseSnpReport((await snpEvidence()).virtee.report);
  t.is(r.version, 2);
  t.is(r.signatureAlgo, 1);
  t.is(r.signingKey, 'vcek');
  t.is(r.tcbLayout, 'milan-genoa');
  t.is(r.cpuid, undefined);
  t.is(r.launchMitVector, undefined);
  t.is(r.policy.raw, '0x0000000000030000');
  t.like(r.policy, { smt: true, debug: false, migrateMa: false, abiMajor: 0, abiMinor: 0 });
  t.is(r.reportedTcb.raw, '0x7308000000000003');
  t.is(r.measurement.length, 96);
  t.is(r.chipId.length, 128);
  t.is(r.signature.r.length, 144);
});

test('strict parse: lengths, reserved fields, policy and key-info bits', async (t) => {
  const b = (await snpEvidence()).goSev.report;
  const with_ = (o: number, v: number): Buffer => {
    const c = Buffer.from(b);
    c[o] = v;
    return c;
  };
  t.notThrows(() => parseSnpReport(b));
  t.throws(() => parseSnpReport(b.subarray(1)), { code: 'SNP_REPORT_MALFORMED' });
  t.throws(() => parseSnpReport(with_(0, 4)), { code: 'SNP_REPORT_VERSION_UNSUPPORTED' });
  t.throws(() => parseSnpReport(with_(0, 1)), { code: 'SNP_REPORT_VERSION_UNSUPPORTED' });
  t.throws(() => parseSnpReport(with_(0x48, 0x08)), { code: 'SNP_REPORT_MALFORMED' }, 'SIGNING_KEY 2 is reserved');
  t.throws(() => parseSnpReport(with_(0x49, 0x01)), { code: 'SNP_REPORT_MALFORMED' }, 'key info bit 8');
  t.throws(() => parseSnpReport(with_(0x0b, 0x04)), { code: 'SNP_REPORT_MALFORMED' }, 'policy bit 26');
  t.throws(() => parseSnpReport(with_(0x188, 0x19)), { code: 'SNP_REPORT_MALFORMED' }, 'CPUID bytes are reserved in version 2');
  t.throws(() => parseSnpReport(with_(0x1eb, 1)), { code: 'SNP_REPORT_MALFORMED' });
  t.throws(() => parseSnpReport(with_(0x1f8, 1)), { code: 'SNP_REPORT_MALFORMED' }, 'mitigation vectors are reserved before version 5');
  // As version 3, the CPUID bytes are fields; as version 5 the mitigation vectors are.
  const v3 = with_(0, 3);
  v3[0x188] = 0x1a;
  const r3 = parseSnpReport(v3);
  t.deepEqual(r3.cpuid, { family: 0x1a, model: 0, stepping: 0 });
  t.is(r3.tcbLayout, 'turin');
  t.like(r3.reportedTcb, { fmc: 2, bootloader: 0, tee: 0, snp: 0, microcode: 68 });
  const v5 = with_(0, 5);
  v5[0x1f8] = 7;
  t.is(parseSnpReport(v5).launchMitVector, '0x0000000000000007');
});

test('fuzz: random bytes and mutated real reports raise only typed errors', async (t) => {
  const real = (await snpEvidence()).goSev.report;
  t.notThrows(() => fc.assert(fc.property(fc.uint8Array({ maxLength: 1300 }), (b) => onlyTyped(() => decodeEvidence(b))), { numRuns: 500 }));
  t.notThrows(() => fc.assert(fc.property(fc.uint8Array({ minLength: 1184, maxLength: 1184 }), (b) => onlyTyped(() => parseSnpReport(b))), { numRuns: 500 }));
  t.notThrows(() => fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(1183), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), (muts) => {
      const c = Buffer.from(real);
      for (const [o, x] of muts) c[o] ^= x;
      return onlyTyped(() => parseSnpReport(c));
    }),
    { numRuns: 1000 },
  ));
});

test('fuzz: mutated real certificates, chains and the full verifier raise only typed errors', async (t) => {
  const e = (await snpEvidence()).goSev;
  const mutate = (b: Buffer, muts: [number, number][]): Buffer => {
    const c = Buffer.from(b);
    for (const [o, x] of muts) c[o % c.length] ^= x;
    return c;
  };
  const muts = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 });
  t.notThrows(() => fc.assert(fc.property(muts, (m) => onlyTyped(() => parseSignerCert(mutate(e.vcek, m)))), { numRuns: 400 }));
  t.notThrows(() => fc.assert(fc.property(muts, (m) => onlyTyped(() => verifySnpAuthenticity(e.report, { signerCert: mutate(e.vcek, m), chain: e.chain }))), { numRuns: 200 }));
  t.notThrows(() => fc.assert(fc.property(muts, (m) => onlyTyped(() => verifySnpAuthenticity(e.report, { signerCert: e.vcek, chain: mutate(e.chain, m) }))), { numRuns: 200 }));
  t.notThrows(() => fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => onlyTyped(() => splitCertificates(b, 'x'))), { numRuns: 300 }));
  t.notThrows(() => fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => onlyTyped(() => parseCrl(b))), { numRuns: 300 }));
});

test('Azure HCL framing: detected, parsed, the inner report and the runtime JWKs found', async (t) => {
  const report = (await snpEvidence()).goSev.report;
  const hcl = hclAround(report, RUNTIME);
  const ev = decodeEvidence(hcl);
  t.is(ev.kind, 'azure-hcl');
  if (ev.kind !== 'azure-hcl') return;
  t.true(Buffer.from(ev.reportBytes).equals(report));
  t.is(ev.hcl.hashType, 'sha256');
  t.deepEqual(ev.hcl.runtimeClaims.keys.map((k) => k.kid), ['HCLAkPub']);
  t.is(decodeEvidence(report).kind, 'snp');
  // The real report's report_data is not the hash of this runtime data: refused at that stage, after the signature held.
  const e = (await snpEvidence()).goSev;
  t.throws(() => verifySnpAuthenticity(hcl, { signerCert: e.vcek, chain: e.chain }), { code: 'SNP_RUNTIME_DATA_MISMATCH' });
});

test('Azure HCL framing: every inconsistency is SNP_HCL_MALFORMED', async (t) => {
  const report = (await snpEvidence()).goSev.report;
  t.throws(() => parseHclReport(hclAround(report, RUNTIME, { reportType: 4 })), { code: 'SNP_HCL_MALFORMED', message: /TDX/ });
  t.throws(() => parseHclReport(hclAround(report, RUNTIME, { hashType: 9 })), { code: 'SNP_HCL_MALFORMED' });
  t.throws(() => parseHclReport(hclAround(report, Buffer.from('{"keys":5}'))), { code: 'SNP_HCL_MALFORMED' });
  t.throws(() => parseHclReport(hclAround(report, Buffer.from('{"keys":[{"kid":1}]}'))), { code: 'SNP_HCL_MALFORMED' });
  t.throws(() => parseHclReport(hclAround(report, Buffer.from([0xff, 0xfe]))), { code: 'SNP_HCL_MALFORMED' });
  const bad = hclAround(report, RUNTIME);
  bad.writeUInt32LE(9999, 8);
  t.throws(() => parseHclReport(bad), { code: 'SNP_HCL_MALFORMED' });
  t.throws(() => parseHclReport(hclAround(report, RUNTIME).subarray(0, 1300)), { code: 'SNP_HCL_MALFORMED' });
  const good = hclAround(report, RUNTIME);
  t.notThrows(() => fc.assert(
    fc.property(fc.nat(1500), fc.integer({ min: 1, max: 255 }), (o, x) => {
      const c = Buffer.from(good);
      c[o] ^= x;
      return onlyTyped(() => decodeEvidence(c));
    }),
    { numRuns: 500 },
  ));
});

test('HCLAkPub becomes the public key the vTPM quote must verify with; a broken one is SNP_HCL_MALFORMED', (t) => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'HCLAkPub', key_ops: ['encrypt'] };
  const claims = parseRuntimeClaims(Buffer.from(JSON.stringify({ keys: [jwk] })));
  t.true(hclAkPublicKey(claims).equals(publicKey));
  t.throws(() => hclAkPublicKey(parseRuntimeClaims(Buffer.from('{"keys":[]}'))), { code: 'SNP_HCL_MALFORMED', message: /no HCLAkPub/ });
  t.throws(() => hclAkPublicKey(parseRuntimeClaims(Buffer.from('{"keys":[{"kid":"HCLAkPub","kty":"RSA","n":"AA","e":"x"}]}'))), { code: 'SNP_HCL_MALFORMED' });
});
