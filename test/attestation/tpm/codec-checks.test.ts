import test from 'ava';
import { marshal, unmarshal } from '../../../tpm/codec.js';
import { qualifyingData } from '../../../protocol/seal.js';
import { loadEvidence } from '../../helpers/record-evidence.js';
import { TPM_ALG, TPMA_OBJECT } from '../../../tpm/constants.js';
import { TPMT_PUBLIC, type TpmtPublic } from '../../../tpm/structures.js';
import { codecTpmChecks } from '../../../attestation/tpm/codec-checks.js';

const SIGNING_KEY = TPMA_OBJECT.restricted | TPMA_OBJECT.sign | TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin;

/** A restricted HMAC signing key: the attributes of an AK, but no public key to check a quote with. */
const keyedHash = (objectAttributes: number): Uint8Array =>
  marshal(TPMT_PUBLIC, { type: TPM_ALG.KEYEDHASH, nameAlg: TPM_ALG.SHA256, objectAttributes, authPolicy: new Uint8Array(0), parameters: { scheme: { scheme: TPM_ALG.HMAC, hashAlg: TPM_ALG.SHA256 } }, unique: new Uint8Array(32) } as unknown as TpmtPublic);

test('each AK defect has its own code: attributes AK_ATTRIBUTES_INVALID, key type AK_ALGORITHM_UNSUPPORTED', (t) => {
  t.throws(() => codecTpmChecks.parseAk(keyedHash(SIGNING_KEY & ~TPMA_OBJECT.restricted)), { code: 'AK_ATTRIBUTES_INVALID' });
  t.throws(() => codecTpmChecks.parseAk(keyedHash(SIGNING_KEY | TPMA_OBJECT.decrypt)), { code: 'AK_ATTRIBUTES_INVALID' });
  const ak = codecTpmChecks.parseAk(keyedHash(SIGNING_KEY));
  t.throws(() => codecTpmChecks.verifyQuote(ak, new Uint8Array(8), new Uint8Array(8), new Uint8Array(32)), { code: 'AK_ALGORITHM_UNSUPPORTED' });
});
test('the same AK bytes give the same identity and key object; its quotes verify as before, a flipped signature is still refused', async (t) => {
  const ev = await loadEvidence();
  const akBytes = Buffer.from(ev.akPublic, 'base64');
  const a = codecTpmChecks.parseAk(akBytes);
  t.is(codecTpmChecks.parseAk(Buffer.from(akBytes)), a);
  t.is(a.publicKey!(), a.publicKey!());
  const extra = qualifyingData(Buffer.from(ev.nonce, 'base64'), Buffer.from(ev.ephemeralPublicKey, 'base64'));
  const attest = Buffer.from(ev.quoteAttest, 'base64');
  const sig = Buffer.from(ev.quoteSignature, 'base64');
  for (let i = 0; i < 2; i++) t.is(codecTpmChecks.verifyQuote(a, attest, sig, extra).extraData.toString('hex'), extra.toString('hex'));
  const bad = Buffer.from(sig);
  bad[bad.length - 1] ^= 1;
  t.throws(() => codecTpmChecks.verifyQuote(a, attest, bad, extra), { code: 'QUOTE_SIGNATURE_INVALID' } as never);
});

test('an AK whose point is not on its curve still parses (its Name is what round 1 needs) and is refused at the quote, KEY_INVALID, every time', async (t) => {
  const ev = await loadEvidence();
  const pub = unmarshal(TPMT_PUBLIC, Buffer.from(ev.akPublic, 'base64'));
  if (pub.type !== 0x0023) return t.fail('the recorded AK is ECC');
  const x = Buffer.from(pub.unique.x);
  x[x.length - 1] ^= 1;
  const off = marshal(TPMT_PUBLIC, { ...pub, unique: { ...pub.unique, x } });
  const ak = codecTpmChecks.parseAk(off);
  for (let i = 0; i < 2; i++) {
    t.throws(() => codecTpmChecks.verifyQuote(ak, Buffer.from(ev.quoteAttest, 'base64'), Buffer.from(ev.quoteSignature, 'base64'), Buffer.alloc(32)), { code: 'KEY_INVALID' } as never);
  }
});

test('an AK that fails the attribute checks is refused on every parse (never kept)', async (t) => {
  const ev = await loadEvidence();
  const pub = unmarshal(TPMT_PUBLIC, Buffer.from(ev.akPublic, 'base64'));
  const decrypting = marshal(TPMT_PUBLIC, { ...pub, objectAttributes: pub.objectAttributes | 0x20000 });
  for (let i = 0; i < 2; i++) t.throws(() => codecTpmChecks.parseAk(decrypting), { code: 'AK_ATTRIBUTES_INVALID' } as never);
});
