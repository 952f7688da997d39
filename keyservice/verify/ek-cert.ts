import { X509Certificate } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';

/**
 * The EK certificate must be signed by one of the configured EK CAs (TPM vendor roots or
 * their intermediates; each configured certificate is a trust anchor) and be within its
 * validity period.
 */
export function verifyEkCert(der: Uint8Array, anchors: readonly X509Certificate[], now: Date): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(der));
  } catch (cause) {
    throw new SextantError({ code: 'EK_CERT_UNTRUSTED', message: 'EK certificate is not DER X.509', cause });
  }
  const issuer = anchors.find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
  if (!issuer) {
    throw new SextantError({ code: 'EK_CERT_UNTRUSTED', message: `EK certificate (issuer "${cert.issuer.replace(/\n/g, ', ')}") is not signed by a trusted EK CA` });
  }
  if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) {
    throw new SextantError({ code: 'EK_CERT_UNTRUSTED', message: `EK certificate is outside its validity (${cert.validFrom} - ${cert.validTo})` });
  }
  return cert;
}

export function loadCaCertificates(pems: readonly string[]): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const pem of pems) {
    for (const block of pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
      out.push(new X509Certificate(block));
    }
  }
  return out;
}
