import { X509Certificate } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';

/**
 * The EK certificate must chain to one of the configured EK CAs (TPM vendor roots or
 * intermediates; every configured certificate is a trust anchor), possibly through
 * intermediates the agent sent (which must be CA certificates), each link signed by the
 * next and every certificate within its validity period.
 */
export function verifyEkCert(der: Uint8Array, anchors: readonly X509Certificate[], now: Date, intermediates: readonly Uint8Array[] = []): X509Certificate {
  const ek = parseCert(der, 'EK certificate');
  const pool = intermediates.map((d, i) => parseCert(d, `EK chain certificate ${i}`)).filter((c) => c.ca);
  let current = ek;
  for (let depth = 0; depth < 6; depth++) {
    checkValidity(current, now);
    const anchor = anchors.find((ca) => current.checkIssued(ca) && current.verify(ca.publicKey));
    if (anchor) {
      checkValidity(anchor, now);
      return ek;
    }
    const next = pool.find((ca) => ca !== current && current.checkIssued(ca) && current.verify(ca.publicKey));
    if (!next) break;
    current = next;
  }
  throw new SextantError({
    code: 'EK_CERT_UNTRUSTED',
    message: `EK certificate (issuer "${ek.issuer.replace(/\n/g, ', ')}") does not chain to a trusted EK CA`,
  });
}

function parseCert(der: Uint8Array, what: string): X509Certificate {
  try {
    return new X509Certificate(Buffer.from(der));
  } catch (cause) {
    throw new SextantError({ code: 'EK_CERT_UNTRUSTED', message: `${what} is not DER X.509`, cause });
  }
}

function checkValidity(cert: X509Certificate, now: Date): void {
  if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) {
    throw new SextantError({ code: 'EK_CERT_UNTRUSTED', message: `certificate "${cert.subject.replace(/\n/g, ', ')}" is outside its validity (${cert.validFrom} - ${cert.validTo})` });
  }
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
