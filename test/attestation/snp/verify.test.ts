import test from 'ava';
import { createHash } from 'node:crypto';
import { verifySnpAuthenticity, verifySnpEvidence, type SnpVerifyOptions } from '../../../attestation/snp/verify.js';
import { snpEvidence } from '../../helpers/snp-evidence.js';

// Real evidence only: go-sev-guest's attestation.bin (Milan, debug allowed) and virtee/sev's
// report_milan.hex, each with the VCEK AMD KDS issued for it and AMD's Milan chain, from Debian.

const flip = (b: Buffer, offset: number, mask = 0x01): Buffer => {
  const c = Buffer.from(b);
  c[offset] ^= mask;
  return c;
};

async function goSev(): Promise<{ report: Buffer; opts: SnpVerifyOptions }> {
  const e = (await snpEvidence()).goSev;
  return { report: e.report, opts: { signerCert: e.vcek, chain: e.chain } };
}

test('go-sev-guest real Milan report: signature and chain to the pinned ARK hold; the typed state carries the upstream facts', async (t) => {
  const { report, opts } = await goSev();
  const { state, findings } = verifySnpAuthenticity(report, opts);
  t.deepEqual(state.stages, ['format', 'chain', 'validity', 'signer-binding', 'signature']);
  t.is(state.chain.product, 'Milan');
  t.is(state.chain.ark.sha256, '69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd');
  t.is(state.signer.kind, 'vcek');
  t.is(state.signer.productName, 'Milan-B0');
  // Upstream's TestRealAttestationVerification fetches this VCEK by hwID and TCB:
  // .../vcek/v1/Milan/3ac3fe21...6b5d?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68, nonce 01 02 03 04 05.
  t.true(state.report.chipId.startsWith('3ac3fe21e13fb0990eb28a802e3fb6a2'));
  t.true(state.report.chipId.endsWith('c05f63c9b610c5068b006b5d'));
  t.like(state.report.reportedTcb, { bootloader: 2, tee: 0, snp: 5, microcode: 68 });
  t.is(state.report.reportData, '0102030405' + '00'.repeat(59));
  // The VM was launched with debugging allowed: authentic, but the default policy refuses it.
  t.deepEqual(findings.map((f) => f.code), ['SNP_POLICY_REFUSED']);
  t.throws(() => verifySnpEvidence(report, opts), { code: 'SNP_POLICY_REFUSED' });
});

test('virtee/sev real Milan report passes every stage under the default policy', async (t) => {
  const e = (await snpEvidence()).virtee;
  const state = verifySnpEvidence(e.report, { signerCert: e.vcek, chain: e.chain });
  t.deepEqual(state.stages, ['format', 'chain', 'validity', 'signer-binding', 'signature', 'guest-policy']);
  t.false(state.report.policy.debug);
  t.like(state.report.reportedTcb, { bootloader: 3, tee: 0, snp: 8, microcode: 115 });
  // Configured policy stages run on the now-authentic fields.
  const exact = verifySnpEvidence(e.report, {
    signerCert: e.vcek,
    chain: e.chain,
    policy: { minTcb: { bootloader: 3, snp: 8, microcode: 115 }, measurements: [state.report.measurement], idKeyDigests: [state.report.idKeyDigest], vmpl: state.report.vmpl },
  });
  t.deepEqual(exact.stages.slice(-4), ['guest-policy', 'tcb-minimum', 'measurement', 'id-key']);
  // The state is plain data: it goes into the audit record as JSON without loss.
  t.deepEqual(JSON.parse(JSON.stringify(exact)), exact);
  const base = { signerCert: e.vcek, chain: e.chain };
  t.throws(() => verifySnpEvidence(e.report, { ...base, policy: { minTcb: { microcode: 116 } } }), { code: 'SNP_TCB_TOO_OLD' });
  t.throws(() => verifySnpEvidence(e.report, { ...base, policy: { measurements: ['00'.repeat(48)] } }), { code: 'SNP_MEASUREMENT_UNKNOWN' });
  t.throws(() => verifySnpEvidence(e.report, { ...base, policy: { idKeyDigests: ['11'.repeat(48)] } }), { code: 'SNP_ID_KEY_UNKNOWN' });
  t.throws(() => verifySnpEvidence(e.report, { ...base, policy: { vmpl: state.report.vmpl + 1 } }), { code: 'SNP_POLICY_REFUSED' });
  t.throws(() => verifySnpEvidence(e.report, { ...base, policy: { products: ['Genoa'] } }), { code: 'SNP_SIGNER_MISMATCH' });
  t.throws(() => verifySnpEvidence(e.report, { ...base, policy: { signers: ['vlek'] } }), { code: 'SNP_SIGNER_MISMATCH' });
  t.throws(() => verifySnpEvidence(e.report, { ...base, policy: { versions: [3, 5] } }), { code: 'SNP_REPORT_VERSION_UNSUPPORTED' });
});

test('one changed byte in the report refuses with the code of the stage that catches it', async (t) => {
  const { report, opts } = await goSev();
  const cases: [string, number, number, string][] = [
    ['signature r', 0x2a0, 0x01, 'SNP_SIGNATURE_INVALID'],
    ['signature s', 0x2a0 + 72 + 10, 0x80, 'SNP_SIGNATURE_INVALID'],
    ['signature r upper (zero) bytes', 0x2a0 + 60, 0x01, 'SNP_SIGNATURE_INVALID'],
    ['measurement', 0x90, 0x01, 'SNP_SIGNATURE_INVALID'],
    ['report_data', 0x50 + 63, 0x01, 'SNP_SIGNATURE_INVALID'],
    ['host_data', 0xc0, 0x01, 'SNP_SIGNATURE_INVALID'],
    ['current TCB', 0x38 + 7, 0x01, 'SNP_SIGNATURE_INVALID'],
    ['reported TCB microcode', 0x180 + 7, 0x01, 'SNP_TCB_MISMATCH'],
    ['reported TCB boot loader', 0x180, 0x01, 'SNP_TCB_MISMATCH'],
    ['chip_id', 0x1a0 + 5, 0x01, 'SNP_CHIP_ID_MISMATCH'],
    ['signing key VCEK -> VLEK', 0x48, 0x04, 'SNP_SIGNER_MISMATCH'],
    ['signature algorithm', 0x34, 0x02, 'SNP_SIGNATURE_ALGO_UNSUPPORTED'],
    ['version 2 -> 6', 0x00, 0x04, 'SNP_REPORT_VERSION_UNSUPPORTED'],
    ['reserved 0x4C', 0x4c, 0x01, 'SNP_REPORT_MALFORMED'],
    ['reserved after launch TCB', 0x250, 0x01, 'SNP_REPORT_MALFORMED'],
    ['signature reserved', 0x2a0 + 0x90 + 3, 0x01, 'SNP_REPORT_MALFORMED'],
    ['policy reserved bit 17', 0x0a, 0x02, 'SNP_REPORT_MALFORMED'],
  ];
  for (const [what, offset, mask, code] of cases) {
    t.throws(() => verifySnpAuthenticity(flip(report, offset, mask), opts), { code }, what);
  }
  t.throws(() => verifySnpAuthenticity(report.subarray(0, 1183), opts), { code: 'SNP_REPORT_MALFORMED' });
  t.throws(() => verifySnpAuthenticity(Buffer.concat([report, Buffer.alloc(1)]), opts), { code: 'SNP_REPORT_MALFORMED' });
});

test('report_data binding: the caller-supplied 64 bytes must match exactly', async (t) => {
  const { report, opts } = await goSev();
  const want = Buffer.alloc(64);
  Buffer.from([1, 2, 3, 4, 5]).copy(want);
  t.true(verifySnpAuthenticity(report, { ...opts, expectedReportData: want }).state.stages.includes('report-data'));
  t.throws(() => verifySnpAuthenticity(report, { ...opts, expectedReportData: flip(want, 63) }), { code: 'SNP_REPORT_DATA_MISMATCH' });
  const sha = Buffer.alloc(64);
  createHash('sha256').update('some runtime data').digest().copy(sha);
  t.throws(() => verifySnpAuthenticity(report, { ...opts, expectedReportData: sha }), { code: 'SNP_REPORT_DATA_MISMATCH' });
});

test('one changed byte in the VCEK or the chain refuses; so do a wrong chain and unpinned roots', async (t) => {
  const { report, opts } = await goSev();
  const e = (await snpEvidence()).goSev;
  // The VCEK's signature value (its last bytes) and a byte of its public key (inside the signed TBS).
  t.throws(() => verifySnpAuthenticity(report, { ...opts, signerCert: flip(e.vcek, e.vcek.length - 5) }), { code: 'SNP_CHAIN_INVALID' });
  // ucodeSPL extension (1.3.6.1.4.1.3704.1.3.8 = INTEGER 68) inside the signed TBS: claims microcode 69.
  const ucode = e.vcek.indexOf(Buffer.from('060a2b060104019c78010308', 'hex'));
  t.true(ucode > 0);
  t.is(e.vcek[ucode + 16], 68);
  t.throws(() => verifySnpAuthenticity(report, { ...opts, signerCert: flip(e.vcek, ucode + 16) }), { code: 'SNP_CHAIN_INVALID' });
  // A byte of its public key: not a point on P-384 any more.
  const q = e.vcek.indexOf(Buffer.from('0448ec9f362eedee', 'hex'));
  t.true(q > 0);
  t.throws(() => verifySnpAuthenticity(report, { ...opts, signerCert: flip(e.vcek, q + 20) }), { code: 'SNP_CERT_MALFORMED' });
  const pems = e.chain.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
  const der = pems.map((p) => Buffer.from(p.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64'));
  const [ask, ark] = der;
  t.true(verifySnpAuthenticity(report, { ...opts, chain: Buffer.concat([ask, ark]) }).state.stages.includes('chain'), 'concatenated DER chain');
  t.throws(() => verifySnpAuthenticity(report, { ...opts, chain: Buffer.concat([flip(ask, ask.length - 3), ark]) }), { code: 'SNP_CHAIN_INVALID' });
  t.throws(() => verifySnpAuthenticity(report, { ...opts, chain: Buffer.concat([ask, flip(ark, ark.length - 3)]) }), { code: 'SNP_ROOT_NOT_PINNED' });
  t.throws(() => verifySnpAuthenticity(report, { ...opts, chain: ark }), { code: 'SNP_CHAIN_INVALID' }, 'no ASK');
  t.throws(() => verifySnpAuthenticity(report, { ...opts, chain: ask }), { code: 'SNP_CHAIN_MISSING' }, 'no ARK');
  t.throws(() => verifySnpAuthenticity(report, { ...opts, chain: undefined }), { code: 'SNP_CHAIN_MISSING' });
  t.throws(() => verifySnpAuthenticity(report, { ...opts, chain: e.vlekChain }), { code: 'SNP_CHAIN_INVALID' }, 'ASVK chain for a VCEK');
  t.throws(() => verifySnpAuthenticity(report, { ...opts, roots: [] }), { code: 'SNP_ROOT_NOT_PINNED' });
  t.throws(() => verifySnpAuthenticity(report, { ...opts, signerCert: ask }), { code: 'SNP_CERT_MALFORMED' }, 'an ASK is not a VCEK');
  t.throws(() => verifySnpAuthenticity(report, { ...opts, signerCert: Buffer.from('not a certificate') }), { code: 'SNP_CERT_MALFORMED' });
  // Another real chip's VCEK (virtee's Milan) chains fine but is not this chip's key.
  const other = (await snpEvidence()).virtee.vcek;
  t.throws(() => verifySnpAuthenticity(report, { ...opts, signerCert: other }), { code: 'SNP_TCB_MISMATCH' });
});

test('certificate validity is judged at `at`: the VCEK (2022-09-24 .. 2029-09-24) is refused outside it', async (t) => {
  const { report, opts } = await goSev();
  t.notThrows(() => verifySnpAuthenticity(report, { ...opts, at: new Date('2022-09-24T01:00:00Z') }), 'upstream TestVerifyVcekCert time');
  t.throws(() => verifySnpAuthenticity(report, { ...opts, at: new Date('2029-09-25T00:00:00Z') }), { code: 'SNP_CERT_EXPIRED' });
  t.throws(() => verifySnpAuthenticity(report, { ...opts, at: new Date('2022-09-23T00:00:00Z') }), { code: 'SNP_CERT_EXPIRED' });
});
