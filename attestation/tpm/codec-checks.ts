import type { KeyObject } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';
import { hashAlgName, TPM_ALG } from '../../tpm/constants.js';
import { unmarshal } from '../../tpm/codec.js';
import { objectName } from '../../tpm/name.js';
import { publicKeyFromTpmt, tpmtWithPublicKey } from '../../tpm/public-key.js';
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
/**
 * Parsed AKs by their TPMT_PUBLIC bytes (base64), most recently used last: an AK is parsed
 * and its key imported once, not on every round and quote (sextant's AK is a deterministic
 * primary: the same bytes every boot). Bounded; only AKs that passed the checks are kept.
 */
const akCache = new Map<string, AkIdentity>();
const AK_CACHE_ENTRIES = 10_000;

function parseAkUncached(akPublic: Uint8Array): AkIdentity {
  const pub = unmarshal(TPMT_PUBLIC, akPublic);
  checkAkAttributes(pub);
  if (!hashAlgName(pub.nameAlg)) throw new SextantError({ code: 'PROTOCOL_INVALID', message: 'the AK has an unsupported name algorithm' });
  let key: KeyObject | undefined;
  return { name: Buffer.from(objectName(pub)), publicArea: pub, publicKey: () => (key ??= publicKeyFromTpmt(pub)) };
}

export const codecTpmChecks: TpmChecks = {
  parseAk(akPublic: Uint8Array): AkIdentity {
    const k = Buffer.from(akPublic).toString('base64');
    const hit = akCache.get(k);
    if (hit) {
      akCache.delete(k);
      akCache.set(k, hit);
      return hit;
    }
    const ak = parseAkUncached(akPublic);
    if (akCache.size >= AK_CACHE_ENTRIES) akCache.delete(akCache.keys().next().value!);
    akCache.set(k, ak);
    return ak;
  },

  makeCredential(key: KeyObject, akName: Uint8Array, credential: Uint8Array) {
    const type = key.asymmetricKeyType;
    // The EK is the default-template EK (TCG EK profile L-1 / L-2) whose public key the certificate names.
    let ekPublic: TpmtPublic;
    if (type === 'rsa' && key.asymmetricKeyDetails?.modulusLength === 2048) ekPublic = tpmtWithPublicKey(ekTemplateRsa2048(), key);
    else if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') ekPublic = tpmtWithPublicKey(ekTemplateEccP256(), key);
    else throw new SextantError({ code: 'EK_CERT_UNTRUSTED', message: `the EK is ${type}; expected RSA 2048 or ECC P-256` });
    const r = makeCredential({ ekPublic, akName, secret: credential }, { publicKey: key });
    return { credentialBlob: Buffer.from(r.credentialBlob), encryptedSecret: Buffer.from(r.encryptedSecret) };
  },

  verifyQuote(ak: AkIdentity, attest: Uint8Array, signature: Uint8Array, extraData: Uint8Array): QuotedFacts {
    const pub = ak.publicArea as TpmtPublic;
    if (pub.type !== TPM_ALG.ECC && pub.type !== TPM_ALG.RSA) throw new SextantError({ code: 'AK_ALGORITHM_UNSUPPORTED', message: 'the AK is neither RSA nor ECC' });
    const q = verifyQuote({ attest, signature, akPublic: pub, akKey: ak.publicKey?.() }, { extraData });
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
