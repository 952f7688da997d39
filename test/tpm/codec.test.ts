import test from 'ava';
import fc from 'fast-check';
import { marshal, unmarshal, type Codec, u16, u32, u64, u8 } from '../../tpm/codec.js';
import { TPM_ALG, TPM_CAP, TPM_ECC_CURVE, TPM_ST } from '../../tpm/constants.js';
import { pcrSelection, parsePcrList, selectedPcrs } from '../../tpm/pcr-selection.js';
import * as S from '../../tpm/structures.js';
import { fixture } from './fixtures.js';
import { isSextantError } from '../../lib/errors.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

interface Row<T> {
  name: string;
  codec: Codec<T>;
  value: T;
  bytes: string;
}
const row = <T>(r: Row<T>) => r as Row<unknown>;

const TABLE: Row<unknown>[] = [
  row({ name: 'UINT8', codec: u8, value: 0xab, bytes: 'ab' }),
  row({ name: 'UINT16 is big-endian', codec: u16, value: 0x1234, bytes: '1234' }),
  row({ name: 'UINT32', codec: u32, value: 0xff544347, bytes: 'ff544347' }),
  row({ name: 'UINT64', codec: u64, value: 0x0102030405060708n, bytes: '0102030405060708' }),
  row({ name: 'TPM2B_DIGEST', codec: S.TPM2B_DIGEST, value: hex('abcd'), bytes: '0002 abcd' }),
  row({ name: 'empty TPM2B_DATA', codec: S.TPM2B_DATA, value: new Uint8Array(0), bytes: '0000' }),
  row({
    name: 'TPML_PCR_SELECTION sha256:0-15',
    codec: S.TPML_PCR_SELECTION,
    value: pcrSelection({ sha256: [...Array(16).keys()] }),
    bytes: '00000001 000b 03 ffff00',
  }),
  row({
    name: 'TPML_PCR_SELECTION sha1:0,7 + sha256:23',
    codec: S.TPML_PCR_SELECTION,
    value: pcrSelection({ sha1: [0, 7], sha256: [23] }),
    bytes: '00000002 0004 03 810000 000b 03 000080',
  }),
  row({
    name: 'TPMT_HA sha1',
    codec: S.TPMT_HA,
    value: { hashAlg: TPM_ALG.SHA1, digest: new Uint8Array(20).fill(1) },
    bytes: '0004' + '01'.repeat(20),
  }),
  row({
    name: 'TPMT_SIGNATURE ECDSA',
    codec: S.TPMT_SIGNATURE,
    value: { sigAlg: TPM_ALG.ECDSA, hash: TPM_ALG.SHA256, r: hex('01'), s: hex('0203') },
    bytes: '0018 000b 0001 01 0002 0203',
  }),
  row({
    name: 'TPMT_SIGNATURE NULL',
    codec: S.TPMT_SIGNATURE,
    value: { sigAlg: TPM_ALG.NULL },
    bytes: '0010',
  }),
  row({
    name: 'TPMT_SYM_DEF_OBJECT AES-128-CFB',
    codec: S.TPMT_SYM_DEF_OBJECT,
    value: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB },
    bytes: '0006 0080 0043',
  }),
  row({
    name: 'TPMS_CAPABILITY_DATA handles',
    codec: S.TPMS_CAPABILITY_DATA,
    value: { capability: TPM_CAP.HANDLES, handles: [0x80000000, 0x81010001] },
    bytes: '00000001 00000002 80000000 81010001',
  }),
  row({
    name: 'TPMS_NV_PUBLIC (sized)',
    codec: S.TPM2B_NV_PUBLIC,
    value: {
      value: { nvIndex: 0x01c00002, nameAlg: TPM_ALG.SHA256, attributes: 0x620f0003, authPolicy: new Uint8Array(0), dataSize: 1000 },
    },
    bytes: '000e 01c00002 000b 620f0003 0000 03e8',
  }),
];

for (const r of TABLE) {
  test(`codec table: ${r.name}`, (t) => {
    const bytes = hex(r.bytes);
    t.deepEqual(Buffer.from(marshal(r.codec, r.value)).toString('hex'), Buffer.from(bytes).toString('hex'));
    const back = unmarshal(r.codec, bytes);
    t.deepEqual(stripRaw(back), stripRaw(r.value));
  });
}

/** Decoded sized values carry `raw`; compare values without it. */
function stripRaw(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (Array.isArray(v)) return v.map(stripRaw);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'raw').map(([k, x]) => [k, stripRaw(x)]));
  }
  return v;
}

test('an ECC AK public area made by swtpm decodes field by field', (t) => {
  const pub = unmarshal(S.TPM2B_PUBLIC, fixture('ak-ecc.pub'));
  const v = pub.value;
  if (v.type !== TPM_ALG.ECC) return t.fail('not ECC');
  t.is(v.nameAlg, TPM_ALG.SHA256);
  t.is(v.objectAttributes, 0x00050072);
  t.is(v.authPolicy.length, 0);
  t.deepEqual(v.parameters.symmetric, { algorithm: TPM_ALG.NULL });
  t.deepEqual(v.parameters.scheme, { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 });
  t.is(v.parameters.curveID, TPM_ECC_CURVE.NIST_P256);
  t.is(v.unique.x.length, 32);
  t.is(v.unique.y.length, 32);
  // raw is the TPMT_PUBLIC exactly as the TPM sent it, and re-encoding reproduces it
  t.deepEqual(Buffer.from(pub.raw!), fixture('ak-ecc.pub').subarray(2));
  t.deepEqual(Buffer.from(marshal(S.TPM2B_PUBLIC, pub)), fixture('ak-ecc.pub'));
});

test('every real TPM structure in the fixtures re-encodes to the same bytes', (t) => {
  for (const f of ['ak-ecc.pub', 'ak-rsassa.pub', 'ak-rsapss.pub', 'ek-rsa.pub', 'ek-ecc.pub']) {
    t.deepEqual(Buffer.from(marshal(S.TPM2B_PUBLIC, unmarshal(S.TPM2B_PUBLIC, fixture(f)))), fixture(f), f);
  }
  for (const f of ['ak-ecc', 'ak-rsassa', 'ak-rsapss']) {
    const attest = fixture(`quote-${f}.attest`);
    t.deepEqual(Buffer.from(marshal(S.TPMS_ATTEST, unmarshal(S.TPMS_ATTEST, attest))), attest, f);
    const sig = fixture(`quote-${f}.sig`);
    t.deepEqual(Buffer.from(marshal(S.TPMT_SIGNATURE, unmarshal(S.TPMT_SIGNATURE, sig))), sig, f);
  }
});

test('decode errors are TPM_UNMARSHAL and name the structure path', (t) => {
  const e = t.throws(() => unmarshal(S.TPM2B_PUBLIC, fixture('ak-ecc.pub').subarray(0, 30)), { code: 'TPM_UNMARSHAL' });
  t.regex(e!.message, /TPM2B_PUBLIC/);
  t.throws(() => unmarshal(S.TPMT_SIGNATURE, hex('0099 000b')), { code: 'TPM_UNMARSHAL', message: /sigAlg 0x0099/ });
  t.throws(() => unmarshal(S.TPM2B_DIGEST, hex('0001 aa bb')), { code: 'TPM_UNMARSHAL', message: /trailing/ });
  t.throws(() => unmarshal(S.TPM2B_DIGEST, hex('0041' + '00'.repeat(65))), { code: 'TPM_UNMARSHAL', message: /maximum/ });
});

test('encode errors are TPM_MARSHAL (a value the format cannot carry), never TPM_UNMARSHAL', (t) => {
  t.throws(() => marshal(u16, 0x10000), { code: 'TPM_MARSHAL', message: /does not fit/ });
  t.throws(() => marshal(u64, -1n), { code: 'TPM_MARSHAL' });
  t.throws(() => marshal(S.TPM2B_DIGEST, new Uint8Array(65)), { code: 'TPM_MARSHAL', message: /at most 64/ });
  t.throws(() => marshal(S.TPML_PCR_SELECTION, Array(17).fill({ hash: TPM_ALG.SHA256, pcrSelect: new Uint8Array(3) })), { code: 'TPM_MARSHAL', message: /at most 16/ });
  t.throws(() => marshal(S.TPMT_SIGNATURE, { sigAlg: 0x0099 } as unknown as S.TpmtSignature), { code: 'TPM_MARSHAL', message: /no encoding for sigAlg 0x99/ });
  fc.assert(
    fc.property(fc.oneof(fc.integer(), fc.double()), (v) => {
      try {
        marshal(u32, v);
        return Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
      } catch (e) {
        return isSextantError(e, 'TPM_MARSHAL');
      }
    }),
  );
});

test('PCR selection helpers: order, parse and bitmap', (t) => {
  const sel = pcrSelection({ sha1: [7, 0], sha256: [16, 3] });
  t.deepEqual(selectedPcrs(sel), [
    { hash: TPM_ALG.SHA1, index: 0 },
    { hash: TPM_ALG.SHA1, index: 7 },
    { hash: TPM_ALG.SHA256, index: 3 },
    { hash: TPM_ALG.SHA256, index: 16 },
  ]);
  t.deepEqual(parsePcrList('0-3,7, 15'), [0, 1, 2, 3, 7, 15]);
  t.throws(() => parsePcrList('3-1'), { code: 'INVALID_ARGUMENT' });
  t.throws(() => parsePcrList('24'), { code: 'INVALID_ARGUMENT' });
  t.throws(() => parsePcrList('x'), { code: 'INVALID_ARGUMENT' });
});

// ---- properties -----------------------------------------------------------------------

const bytesArb = (max: number) => fc.uint8Array({ maxLength: max });
const fixedBytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const hashAlg = fc.constantFrom(TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512);
const selectionArb = fc.array(fc.record({ hash: hashAlg, pcrSelect: bytesArb(4) }), { maxLength: 4 });

const symArb = fc.oneof(
  fc.constant({ algorithm: TPM_ALG.NULL }),
  fc.record({ algorithm: fc.constant(TPM_ALG.AES), keyBits: fc.constantFrom(128, 256), mode: fc.constant(TPM_ALG.CFB) }),
);
const common = {
  nameAlg: hashAlg,
  objectAttributes: fc.nat({ max: 0xffffffff }),
  authPolicy: bytesArb(64),
};
const publicArb = fc.oneof(
  fc.record({
    type: fc.constant(TPM_ALG.RSA),
    ...common,
    parameters: fc.record({
      symmetric: symArb,
      scheme: fc.oneof(
        fc.constant({ scheme: TPM_ALG.NULL }),
        fc.record({ scheme: fc.constantFrom(TPM_ALG.RSASSA, TPM_ALG.RSAPSS, TPM_ALG.OAEP), hashAlg }),
      ),
      keyBits: fc.constantFrom(1024, 2048, 3072, 4096),
      exponent: fc.nat({ max: 0xffffffff }),
    }),
    unique: bytesArb(512),
  }),
  fc.record({
    type: fc.constant(TPM_ALG.ECC),
    ...common,
    parameters: fc.record({
      symmetric: symArb,
      scheme: fc.oneof(
        fc.constant({ scheme: TPM_ALG.NULL }),
        fc.record({ scheme: fc.constantFrom(TPM_ALG.ECDSA, TPM_ALG.ECDH), hashAlg }),
        fc.record({ scheme: fc.constant(TPM_ALG.ECDAA), hashAlg, count: fc.nat({ max: 0xffff }) }),
      ),
      curveID: fc.constantFrom(TPM_ECC_CURVE.NIST_P256, TPM_ECC_CURVE.NIST_P384),
      kdf: fc.oneof(fc.constant({ scheme: TPM_ALG.NULL }), fc.record({ scheme: fc.constant(TPM_ALG.KDF1_SP800_108), hashAlg })),
    }),
    unique: fc.record({ x: bytesArb(66), y: bytesArb(66) }),
  }),
);

const attestArb = fc.record({
  magic: fc.nat({ max: 0xffffffff }),
  type: fc.constant(TPM_ST.ATTEST_QUOTE),
  qualifiedSigner: bytesArb(66),
  extraData: bytesArb(66),
  clockInfo: fc.record({
    clock: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    resetCount: fc.nat({ max: 0xffffffff }),
    restartCount: fc.nat({ max: 0xffffffff }),
    safe: fc.boolean(),
  }),
  firmwareVersion: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  attested: fc.record({ pcrSelect: selectionArb, pcrDigest: bytesArb(64) }),
});

const signatureArb = fc.oneof(
  fc.record({ sigAlg: fc.constant(TPM_ALG.ECDSA), hash: hashAlg, r: bytesArb(66), s: bytesArb(66) }),
  fc.record({ sigAlg: fc.constantFrom(TPM_ALG.RSASSA, TPM_ALG.RSAPSS), hash: hashAlg, sig: bytesArb(512) }),
  fc.constant({ sigAlg: TPM_ALG.NULL }),
);

const haArb = fc.oneof(
  fc.record({ hashAlg: fc.constant(TPM_ALG.SHA1), digest: fixedBytes(20) }),
  fc.record({ hashAlg: fc.constant(TPM_ALG.SHA256), digest: fixedBytes(32) }),
);

function roundTrips<T>(name: string, codec: Codec<T>, arb: fc.Arbitrary<unknown>) {
  test(`fast-check: ${name} round-trips`, (t) => {
    fc.assert(
      fc.property(arb, (v) => {
        const bytes = marshal(codec, v as T);
        const back = unmarshal(codec, bytes);
        t.deepEqual(stripRaw(back), stripRaw(v));
        t.deepEqual(Buffer.from(marshal(codec, back)), Buffer.from(bytes));
      }),
      { numRuns: 200 },
    );
  });
}

roundTrips('TPML_PCR_SELECTION', S.TPML_PCR_SELECTION, selectionArb);
roundTrips('TPM2B_PUBLIC', S.TPM2B_PUBLIC, publicArb.map((value) => ({ value })));
roundTrips('TPMS_ATTEST (quote)', S.TPMS_ATTEST, attestArb);
roundTrips('TPMT_SIGNATURE', S.TPMT_SIGNATURE, signatureArb);
roundTrips('TPML_DIGEST_VALUES', S.TPML_DIGEST_VALUES, fc.array(haArb, { maxLength: 4 }));

const FUZZED: [string, Codec<unknown>][] = [
  ['TPM2B_PUBLIC', S.TPM2B_PUBLIC as Codec<unknown>],
  ['TPMS_ATTEST', S.TPMS_ATTEST as Codec<unknown>],
  ['TPMT_SIGNATURE', S.TPMT_SIGNATURE as Codec<unknown>],
  ['TPMS_CAPABILITY_DATA', S.TPMS_CAPABILITY_DATA as Codec<unknown>],
  ['TPML_PCR_SELECTION', S.TPML_PCR_SELECTION as Codec<unknown>],
  ['TPM2B_NV_PUBLIC', S.TPM2B_NV_PUBLIC as Codec<unknown>],
  ['TPM2B_CREATION_DATA', S.TPM2B_CREATION_DATA as Codec<unknown>],
];

/** Real structures with random bit flips and truncations reach deep into the decoders. */
const SEEDS = ['ak-ecc.pub', 'ek-rsa.pub', 'quote-ak-ecc.attest', 'quote-ak-rsassa.sig'].map((f) => fixture(f));
const mutatedArb = fc
  .tuple(fc.constantFrom(...SEEDS), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 4 }), fc.nat())
  .map(([seed, edits, cut]) => {
    const b = Uint8Array.from(seed);
    for (const [at, v] of edits) b[at % b.length] = v;
    return b.subarray(0, cut % (b.length + 1));
  });

test('fast-check: unmarshal of arbitrary or mutated bytes throws only TPM_UNMARSHAL', (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutatedArb), (bytes) => {
      for (const [, codec] of FUZZED) {
        try {
          unmarshal(codec, bytes);
        } catch (e) {
          if (!isSextantError(e, 'TPM_UNMARSHAL')) throw e;
        }
      }
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
