import test from 'ava';
import { marshal } from '../../../tpm/codec.js';
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
