import { createHash, X509Certificate } from 'node:crypto';
import { hash, toHex } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { certificateInNv } from '../../tpm/ek/cert-bytes.js';
import { tpmIdentity, type TpmIdentity } from './ek-identity.js';

/** What the EK certificate check proved: the certificate, the path to a configured CA, and the TPM it names. */
export interface VerifiedEk {
  cert: X509Certificate;
  /** The intermediates used, EK side first (not the anchor). */
  path: X509Certificate[];
  anchor: X509Certificate;
  /** From the certificate's SAN (TPM manufacturer, model, version); absent when it names none. */
  tpm?: TpmIdentity;
}

/** What the audit record keeps about a verified EK: names and fingerprints, no key material. */
export function ekFacts(v: VerifiedEk): Record<string, unknown> {
  return {
    ekTpm: v.tpm,
    ekIssuer: dn(v.cert.issuer),
    ekAnchor: { subject: dn(v.anchor.subject), sha256: toHex(hash('sha256', v.anchor.raw)) },
    ekPathLength: v.path.length,
  };
}

/** A distinguished name on one line; node:crypto gives undefined for an empty one (Microsoft's and some Infineon EK certificates). */
export function dn(name: string | undefined): string {
  return name ? name.replace(/\n/g, ', ') : '(empty)';
}

const MAX_DEPTH = 6;

/**
 * The EK certificate must chain to one of the configured EK CAs (TPM vendor roots or
 * intermediates; every configured certificate is a trust anchor), possibly through
 * intermediates the agent sent (which must be CA certificates), each link signed by the
 * next and every certificate within its validity period. The certificate may carry what TPMs
 * store around it in NV (padding, the TCG 1.2 NV header); the signature checks run on the
 * bytes as issued. Critical extensions node:crypto does not interpret (a critical SAN with
 * the TPM's identity, critical certificate policies: both in real vendor certificates) do not
 * fail the check: the chain does, and names the issuer it could not find and where the issuer
 * publishes its certificate (AIA), since the key service fetches nothing.
 */
export function verifyEkCert(cert: Uint8Array | X509Certificate, anchors: readonly X509Certificate[], now: Date, intermediates: readonly Uint8Array[] = []): VerifiedEk {
  const ek = cert instanceof X509Certificate ? cert : parseEkCert(cert);
  const pool = intermediates.map((d, i) => parseCert(d, `EK chain certificate ${i}`)).filter((c) => c.ca);
  const path: X509Certificate[] = [];
  let current = ek;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    checkValidity(current, now);
    const anchor = anchors.find((ca) => signedBy(current, ca));
    if (anchor) {
      checkValidity(anchor, now);
      return { cert: ek, path, anchor, tpm: tpmIdentity(ek) };
    }
    const next = pool.find((ca) => ca !== current && !path.includes(ca) && signedBy(current, ca));
    if (!next) break;
    path.push(next);
    current = next;
  }
  const aia = caIssuersUrl(current);
  throw new SextantError({
    code: 'EK_CERT_UNTRUSTED',
    message:
      `EK certificate (issuer "${dn(ek.issuer)}"${path.length ? `, through ${path.length} sent intermediate(s)` : ''}) does not chain to a configured EK CA: ` +
      `no configured or sent CA issued "${dn(current.subject)}" (issuer "${dn(current.issuer)}")` +
      (aia ? `; its issuer's certificate is published at ${aia}: add it with --ek-ca, or have the node send it` : ''),
  });
}

/**
 * The EK certificate as a node sends it (NV padding or header allowed), parsed, not yet
 * trusted: round 1 parses it once and hands the result to verifyEkCert (or the cache).
 */
export function parseEkCert(der: Uint8Array): X509Certificate {
  return parseCert(certificateInNv(der) ?? der, 'EK certificate');
}

/**
 * verifyEkCert for one set of anchors, remembering the chains it verified: a node shows the
 * same EK certificate every boot, and parsing plus verifying it was ~400 us of every
 * attestation. Keyed by the SHA-256 of the EK certificate (as issued, when given parsed; else
 * as sent) and of the intermediates as sent; a
 * hit is still checked against the validity of every certificate on its path at `now`
 * (outside it: verified again, which refuses). Only verified chains are kept, at most
 * `maxEntries` (the least recently used goes first): refusals cost what they did, memory is bounded.
 */
export class EkChainCache {
  private readonly chains = new Map<string, { ek: VerifiedEk; notBefore: number; notAfter: number }>();

  constructor(
    private readonly anchors: readonly X509Certificate[],
    private readonly maxEntries = 10_000,
  ) {}

  verify(cert: Uint8Array | X509Certificate, now: Date, intermediates: readonly Uint8Array[] = []): VerifiedEk {
    const h = createHash('sha256').update(cert instanceof X509Certificate ? cert.raw : cert);
    for (const d of intermediates) h.update(createHash('sha256').update(d).digest());
    const key = h.digest('base64');
    const hit = this.chains.get(key);
    this.chains.delete(key);
    const t = now.getTime();
    if (hit && t >= hit.notBefore && t <= hit.notAfter) {
      this.chains.set(key, hit);
      return hit.ek;
    }
    const ek = verifyEkCert(cert, this.anchors, now, intermediates);
    const onPath = [ek.cert, ...ek.path, ek.anchor];
    if (this.chains.size >= this.maxEntries) this.chains.delete(this.chains.keys().next().value!);
    this.chains.set(key, { ek, notBefore: Math.max(...onPath.map((c) => Date.parse(c.validFrom))), notAfter: Math.min(...onPath.map((c) => Date.parse(c.validTo))) });
    return ek;
  }

  get size(): number {
    return this.chains.size;
  }
}

function signedBy(cert: X509Certificate, ca: X509Certificate): boolean {
  try {
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false; // a key type or signature algorithm OpenSSL cannot use: not this issuer
  }
}

function caIssuersUrl(cert: X509Certificate): string | undefined {
  return /CA Issuers - URI:(\S+)/.exec(cert.infoAccess ?? '')?.[1];
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
    throw new SextantError({ code: 'EK_CERT_UNTRUSTED', message: `certificate "${dn(cert.subject)}" is outside its validity (${cert.validFrom} - ${cert.validTo})` });
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
