import test from 'ava';
import fc from 'fast-check';
import { generateKeyPairSync } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';
import { verifyBlob } from '../../measurements/verify/verify-blob.js';

const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

function onlySignatureInvalid(text: string): boolean {
  try {
    verifyBlob(Buffer.from('measurements'), text, publicKey);
    return false; // nothing random may verify
  } catch (e) {
    return e instanceof SextantError && e.code === 'SIGNATURE_INVALID';
  }
}

test('property: any JSON document given as the signature is refused with SIGNATURE_INVALID only', (t) => {
  const bundleLike = fc.record(
    {
      mediaType: fc.oneof(fc.constant('application/vnd.dev.sigstore.bundle.v0.3+json'), fc.string()),
      verificationMaterial: fc.oneof(fc.constant({ publicKey: { hint: 'x' } }), fc.jsonValue()),
      messageSignature: fc.oneof(
        fc.record({ messageDigest: fc.record({ algorithm: fc.constantFrom('SHA2_256', 'SHA2_384', 7), digest: fc.base64String() }), signature: fc.base64String() }),
        fc.jsonValue(),
      ),
      dsseEnvelope: fc.jsonValue(),
    },
    { requiredKeys: [] },
  );
  // Well-formed JSON in a bundle's shape, and text that only starts like JSON.
  t.notThrows(() => fc.assert(fc.property(bundleLike, (doc) => onlySignatureInvalid(JSON.stringify(doc))), { numRuns: 2000 }));
  t.notThrows(() =>
    fc.assert(fc.property(fc.oneof(fc.jsonValue(), bundleLike), (doc) => onlySignatureInvalid('{' + JSON.stringify(doc))), { numRuns: 2000 }),
  );
});
