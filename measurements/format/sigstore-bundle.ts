import { SextantError } from '../../lib/errors.js';

/**
 * The part of a Sigstore bundle (what `cosign sign-blob --bundle` writes since cosign 3,
 * media type application/vnd.dev.sigstore.bundle.v0.x+json) that a key-based blob
 * signature needs: the message digest and the DER ECDSA signature, plus the public key hint
 * cosign records (base64 SHA-256 of the key's DER SubjectPublicKeyInfo).
 *
 * Not covered, and refused or ignored on purpose: keyless bundles (a Fulcio certificate
 * instead of a key) are refused, transparency-log entries are not verified (sextant pins the
 * release key; a Rekor inclusion proof needs the network the nodes and CI do not have).
 */
export interface SigstoreMessageSignature {
  /** SHA-256 of the signed bytes, as the bundle states it. */
  digest: Buffer;
  /** The DER ECDSA signature over those bytes. */
  signature: Buffer;
  /** base64 SHA-256 of the signer's SPKI, when the bundle names one. */
  keyHint?: string;
}

const MAX_BUNDLE_BYTES = 1 << 20;

function invalid(message: string): SextantError {
  return new SextantError({ code: 'SIGNATURE_INVALID', message: `sigstore bundle: ${message}` });
}

function record(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function base64Field(v: unknown, what: string): Buffer {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) throw invalid(`${what} is not base64`);
  return Buffer.from(v, 'base64');
}

/** True when a signature file's text is a JSON document rather than cosign's base64 line. */
export function looksLikeBundle(text: string): boolean {
  return text.trimStart().startsWith('{');
}

export function parseSigstoreBundle(text: string): SigstoreMessageSignature {
  if (text.length > MAX_BUNDLE_BYTES) throw invalid(`larger than ${MAX_BUNDLE_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw invalid(`not JSON (${(e as Error).message})`);
  }
  const bundle = record(doc, 'the document');
  const mediaType = bundle.mediaType;
  if (typeof mediaType !== 'string' || !/^application\/vnd\.dev\.sigstore\.bundle(\.v0\.[1-9])?\+json(;version=0\.[1-9])?$/.test(mediaType)) {
    throw invalid(`unknown mediaType ${JSON.stringify(mediaType)}`);
  }
  const material = record(bundle.verificationMaterial, 'verificationMaterial');
  if (material.certificate !== undefined || material.x509CertificateChain !== undefined) {
    throw invalid('a keyless (certificate) bundle: sign with a key (`cosign sign-blob --key`) for sextant');
  }
  let keyHint: string | undefined;
  if (material.publicKey !== undefined) {
    const hint = record(material.publicKey, 'verificationMaterial.publicKey').hint;
    if (hint !== undefined) {
      if (typeof hint !== 'string') throw invalid('publicKey.hint is not a string');
      keyHint = hint;
    }
  }
  if (bundle.dsseEnvelope !== undefined) throw invalid('a DSSE envelope: sextant verifies message signatures (`cosign sign-blob`)');
  const message = record(bundle.messageSignature, 'messageSignature');
  const digest = record(message.messageDigest, 'messageSignature.messageDigest');
  if (digest.algorithm !== 'SHA2_256') throw invalid(`digest algorithm ${JSON.stringify(digest.algorithm)}, expected SHA2_256`);
  const digestBytes = base64Field(digest.digest, 'messageDigest.digest');
  if (digestBytes.length !== 32) throw invalid(`messageDigest.digest has ${digestBytes.length} bytes, expected 32`);
  return { digest: digestBytes, signature: base64Field(message.signature, 'messageSignature.signature'), keyHint };
}
