import test from 'ava';
import { generateKeyPairSync, sign } from 'node:crypto';
import { fixture, fixturePublic, parseToolSelection, QUOTE_NAMES, quoteNonce, quotePcrs } from './fixtures.js';
import { marshal, unmarshal } from '../../tpm/codec.js';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST, TPMA_OBJECT } from '../../tpm/constants.js';
import { objectName, qualifiedName } from '../../tpm/name.js';
import { pcrSelection } from '../../tpm/pcr-selection.js';
import { publicKeyPem, tpmtWithPublicKey } from '../../tpm/public-key.js';
import { verifyQuote } from '../../tpm/quote/verify.js';
import { TPMS_ATTEST, TPMT_SIGNATURE, type TpmsAttestQuote, type TpmtPublicEcc } from '../../tpm/structures.js';
import { akTemplate } from '../../tpm/ek/templates.js';

function evidence(name: (typeof QUOTE_NAMES)[number]) {
  return {
    attest: fixture(`quote-${name}.attest`),
    signature: fixture(`quote-${name}.sig`),
    akPublic: fixturePublic(`${name}.pub`),
  };
}

for (const name of QUOTE_NAMES) {
  test(`a real swtpm quote by ${name} verifies: signature, nonce, signer and PCR digest`, (t) => {
    const pcrs = quotePcrs(name);
    const v = verifyQuote(evidence(name), {
      extraData: quoteNonce(),
      pcrs,
      qualifiedSigner: fixture(`${name}.qname`),
    });
    const expectedSelection = Object.fromEntries(parseToolSelection(fixture(`quote-${name}.selection`).toString()));
    t.deepEqual(v.selection, expectedSelection);
    t.is(v.signatureHash, 'sha256');
    t.true(v.clock > 0n);
  });

  test(`${name}: Name, Qualified Name and PEM match tpm2_readpublic`, (t) => {
    const ak = fixturePublic(`${name}.pub`);
    t.deepEqual(Buffer.from(objectName(ak)), fixture(`${name}.name`));
    t.deepEqual(Buffer.from(qualifiedName(fixture('srk.qname'), objectName(ak))), fixture(`${name}.qname`));
    t.is(publicKeyPem(ak.value), fixture(`${name}.pem`).toString());
  });
}

test('a flipped bit in the signature is QUOTE_SIGNATURE_INVALID', (t) => {
  for (const name of QUOTE_NAMES) {
    const e = evidence(name);
    const sig = Buffer.from(e.signature);
    sig[sig.length - 5] ^= 0x01;
    t.throws(() => verifyQuote({ ...e, signature: sig }, { extraData: quoteNonce() }), { code: 'QUOTE_SIGNATURE_INVALID' });
  }
});

test('a flipped bit in the attested data is QUOTE_SIGNATURE_INVALID', (t) => {
  const e = evidence('ak-ecc');
  const attest = Buffer.from(e.attest);
  attest[attest.length - 1] ^= 0x80; // inside pcrDigest
  t.throws(() => verifyQuote({ ...e, attest }, { extraData: quoteNonce() }), { code: 'QUOTE_SIGNATURE_INVALID' });
});

test('a quote checked against another AK is QUOTE_SIGNATURE_INVALID', (t) => {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const otherAk = tpmtWithPublicKey(fixturePublic('ak-ecc.pub').value as TpmtPublicEcc, publicKey);
  t.throws(() => verifyQuote({ ...evidence('ak-ecc'), akPublic: otherAk }, { extraData: quoteNonce() }), {
    code: 'QUOTE_SIGNATURE_INVALID',
  });
  // An RSA AK's quote against an ECC AK fails the same way.
  t.throws(
    () => verifyQuote({ ...evidence('ak-rsassa'), akPublic: fixturePublic('ak-ecc.pub') }, { extraData: quoteNonce() }),
    { code: 'QUOTE_SIGNATURE_INVALID' },
  );
});

test('another nonce is QUOTE_NONCE_MISMATCH', (t) => {
  const other = Buffer.from(quoteNonce());
  other[0] ^= 1;
  t.throws(() => verifyQuote(evidence('ak-ecc'), { extraData: other }), { code: 'QUOTE_NONCE_MISMATCH' });
});

test('altered or missing PCR values are PCR_DIGEST_MISMATCH', (t) => {
  for (const name of QUOTE_NAMES) {
    const pcrs = quotePcrs(name);
    const sha256 = { ...pcrs.sha256! };
    sha256['7'] = 'ff' + sha256['7'].slice(2);
    t.throws(() => verifyQuote(evidence(name), { extraData: quoteNonce(), pcrs: { ...pcrs, sha256 } }), {
      code: 'PCR_DIGEST_MISMATCH',
    });
    const missing = { ...pcrs.sha256! };
    delete missing['0'];
    t.throws(() => verifyQuote(evidence(name), { extraData: quoteNonce(), pcrs: { ...pcrs, sha256: missing } }), {
      code: 'PCR_DIGEST_MISMATCH',
    });
  }
});

test('a wrong expected signer is QUOTE_SIGNER_MISMATCH', (t) => {
  t.throws(
    () => verifyQuote(evidence('ak-ecc'), { extraData: quoteNonce(), qualifiedSigner: fixture('ak-rsassa.qname') }),
    { code: 'QUOTE_SIGNER_MISMATCH' },
  );
});

test('truncated attest is TPM_UNMARSHAL', (t) => {
  const e = evidence('ak-ecc');
  t.throws(() => verifyQuote({ ...e, attest: e.attest.subarray(0, 40) }, { extraData: quoteNonce() }), {
    code: 'TPM_UNMARSHAL',
  });
});

/** A software "AK": a restricted-signing public area around a node:crypto P-256 key. */
function softwareAk(attributes = akTemplate().objectAttributes) {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = tpmtWithPublicKey({ ...akTemplate(), objectAttributes: attributes }, publicKey);
  const signAttest = (a: TpmsAttestQuote) => {
    const attest = marshal(TPMS_ATTEST, a);
    const rs = sign('sha256', attest, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const signature = marshal(TPMT_SIGNATURE, {
      sigAlg: TPM_ALG.ECDSA,
      hash: TPM_ALG.SHA256,
      r: rs.subarray(0, 32),
      s: rs.subarray(32),
    });
    return { attest, signature, akPublic: pub };
  };
  return { pub, signAttest };
}

function fakeQuote(overrides: Partial<TpmsAttestQuote> = {}): TpmsAttestQuote {
  return {
    magic: TPM_GENERATED_VALUE,
    type: TPM_ST.ATTEST_QUOTE,
    qualifiedSigner: new Uint8Array(34),
    extraData: quoteNonce(),
    clockInfo: { clock: 1n, resetCount: 0, restartCount: 0, safe: true },
    firmwareVersion: 0n,
    attested: { pcrSelect: pcrSelection({ sha256: [0] }), pcrDigest: new Uint8Array(32) },
    ...overrides,
  };
}

test('a signed TPMS_ATTEST without TPM_GENERATED_VALUE is QUOTE_NOT_TPM_GENERATED', (t) => {
  const ak = softwareAk();
  t.notThrows(() => verifyQuote(ak.signAttest(fakeQuote()), { extraData: quoteNonce() }));
  t.throws(() => verifyQuote(ak.signAttest(fakeQuote({ magic: 0x12345678 })), { extraData: quoteNonce() }), {
    code: 'QUOTE_NOT_TPM_GENERATED',
  });
});

test('a quote by an unrestricted key is AK_ATTRIBUTES_INVALID', (t) => {
  const ak = softwareAk(akTemplate().objectAttributes & ~TPMA_OBJECT.restricted);
  t.throws(() => verifyQuote(ak.signAttest(fakeQuote()), { extraData: quoteNonce() }), { code: 'AK_ATTRIBUTES_INVALID' });
});

test('the fixture quote decodes to the fields tpm2_quote was asked for', (t) => {
  const a = unmarshal(TPMS_ATTEST, fixture('quote-ak-ecc.attest'));
  t.is(a.magic, TPM_GENERATED_VALUE);
  t.is(a.type, TPM_ST.ATTEST_QUOTE);
  t.deepEqual(Buffer.from(a.extraData), quoteNonce());
});
