import type { KeyObject } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';
import { hashAlgName, TPM_ALG } from '../../tpm/constants.js';
import { unmarshal } from '../../tpm/codec.js';
import { objectName } from '../../tpm/name.js';
import { tpmtWithPublicKey } from '../../tpm/public-key.js';
import { ekTemplateEccP256, ekTemplateRsa2048 } from '../../tpm/ek/templates.js';
import { makeCredential } from '../../tpm/credential/make-credential.js';
import { checkAkAttributes } from '../../tpm/quote/ak-attributes.js';
import { verifyQuote } from '../../tpm/quote/verify.js';
import { TPMT_PUBLIC, type TpmtPublic } from '../../tpm/structures.js';
import type { AkIdentity, QuotedFacts, TpmChecks } from './checks.js';

/**
 * TpmChecks on tpm/'s pure-TypeScript codec: what the key service runs (no TPM library). The
 * AK's attributes are tpm/quote/ak-attributes.ts's one check (AK_ATTRIBUTES_INVALID).
 */
export const codecTpmChecks: TpmChecks = {
  parseAk(akPublic: Uint8Array): AkIdentity {
    const pub = unmarshal(TPMT_PUBLIC, akPublic);
    checkAkAttributes(pub);
    if (!hashAlgName(pub.nameAlg)) throw new SextantError({ code: 'PROTOCOL_INVALID', message: 'the AK has an unsupported name algorithm' });
    return { name: Buffer.from(objectName(pub)), publicArea: pub };
  },

  makeCredential(key: KeyObject, akName: Uint8Array, credential: Uint8Array) {
    const type = key.asymmetricKeyType;
    // The EK is the default-template EK (TCG EK profile L-1 / L-2) whose public key the certificate names.
    let ekPublic: TpmtPublic;
    if (type === 'rsa' && key.asymmetricKeyDetails?.modulusLength === 2048) ekPublic = tpmtWithPublicKey(ekTemplateRsa2048(), key);
    else if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') ekPublic = tpmtWithPublicKey(ekTemplateEccP256(), key);
    else throw new SextantError({ code: 'EK_CERT_UNTRUSTED', message: `the EK is ${type}; expected RSA 2048 or ECC P-256` });
    const r = makeCredential({ ekPublic, akName, secret: credential });
    return { credentialBlob: Buffer.from(r.credentialBlob), encryptedSecret: Buffer.from(r.encryptedSecret) };
  },

  verifyQuote(ak: AkIdentity, attest: Uint8Array, signature: Uint8Array, extraData: Uint8Array): QuotedFacts {
    const pub = ak.publicArea as TpmtPublic;
    if (pub.type !== TPM_ALG.ECC && pub.type !== TPM_ALG.RSA) throw new SextantError({ code: 'AK_ALGORITHM_UNSUPPORTED', message: 'the AK is neither RSA nor ECC' });
    const q = verifyQuote({ attest, signature, akPublic: pub }, { extraData });
    return {
      extraData: Buffer.from(q.attest.extraData),
      selection: Object.entries(q.selection).map(([alg, pcrs]) => ({ alg: alg as QuotedFacts['selection'][number]['alg'], pcrs: [...(pcrs as number[])] })),
      pcrSelect: q.attest.attested.pcrSelect,
      pcrDigest: Buffer.from(q.pcrDigest, 'hex'),
      signatureHash: q.signatureHash,
      resetCount: q.resetCount,
      restartCount: q.restartCount,
    };
  },
};
