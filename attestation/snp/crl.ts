import { constants, verify as cryptoVerify } from 'node:crypto';
import { bytesEqual } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import type { VerifiedChain } from './chain.js';
import { RSASSA_PSS } from './certs.js';
import { DerReader, TAG, integerHex, oidString, type Tlv } from './der.js';

/**
 * Revocation against AMD's CRL (KDS `/vcek/v1/<Product>/crl`, `/vlek/v1/<Product>/crl`): an
 * X.509 CRL issued and signed (RSA-PSS, SHA-384, salt 48) by the product's ARK, listing revoked
 * ASK/ASVK and VCEK/VLEK serial numbers. node:crypto has no CRL type, so the CertificateList
 * is read with the bounded DER reader and its signature checked with crypto.verify.
 */
export interface ParsedCrl {
  issuerDer: Uint8Array;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** Revoked serial numbers, canonical hex. */
  revoked: Set<string>;
  signatureAlgorithm: string;
  tbs: Uint8Array;
  signature: Uint8Array;
}

function malformed(message: string): never {
  throw new SextantError({ code: 'SNP_CRL_MALFORMED', message: `CRL: ${message}` });
}

function derOf(bytes: Uint8Array): Uint8Array {
  const text = Buffer.from(bytes).toString('latin1');
  if (!text.includes('-----BEGIN')) return bytes;
  const m = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+?)-----END X509 CRL-----/.exec(text);
  if (!m) malformed('PEM without an X509 CRL block');
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
}

function time(t: Tlv): Date {
  const s = Buffer.from(t.value).toString('latin1');
  const m = t.tag === TAG.UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : t.tag === TAG.GENERALIZED_TIME ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  if (!m) malformed(`bad time "${s}"`);
  const year = t.tag === TAG.UTC_TIME ? (Number(m[1]) < 50 ? 2000 : 1900) + Number(m[1]) : Number(m[1]);
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

export function parseCrl(input: Uint8Array): ParsedCrl {
  const der = derOf(input);
  const r = new DerReader(der, 'SNP_CRL_MALFORMED', 'CRL');
  const list = r.expect(TAG.SEQUENCE, 0);
  if (list.end !== der.length) malformed('trailing bytes');
  const parts = r.children(list);
  if (parts.length !== 3) malformed('CertificateList is not tbsCertList, signatureAlgorithm, signatureValue');
  const [tbs, alg, sig] = parts;
  if (tbs.tag !== TAG.SEQUENCE || alg.tag !== TAG.SEQUENCE || sig.tag !== TAG.BIT_STRING) malformed('unexpected CertificateList field types');
  if (sig.value.length < 2 || sig.value[0] !== 0) malformed('signature BIT STRING with unused bits');
  const f = r.children(tbs);
  let i = 0;
  if (f[i]?.tag === TAG.INTEGER) i++; // version
  i++; // signature AlgorithmIdentifier (must equal the outer one; the outer one is checked)
  const issuer = f[i++];
  if (!issuer || issuer.tag !== TAG.SEQUENCE) malformed('no issuer Name');
  const thisT = f[i++];
  if (!thisT) malformed('no thisUpdate');
  const thisUpdate = time(thisT);
  let nextUpdate: Date | undefined;
  if (f[i] && (f[i].tag === TAG.UTC_TIME || f[i].tag === TAG.GENERALIZED_TIME)) nextUpdate = time(f[i++]);
  const revoked = new Set<string>();
  if (f[i]?.tag === TAG.SEQUENCE) {
    for (const entry of r.children(f[i++])) {
      const serial = r.children(entry)[0];
      if (!serial || serial.tag !== TAG.INTEGER) malformed('revoked entry without a serial number');
      revoked.add(integerHex(serial.value));
    }
  }
  return {
    issuerDer: r.raw(issuer),
    thisUpdate,
    ...(nextUpdate && { nextUpdate }),
    revoked,
    signatureAlgorithm: oidString(r.expect(TAG.OID, alg.valueStart, alg.end).value),
    tbs: r.raw(tbs),
    signature: sig.value.subarray(1),
  };
}

/**
 * The CRL must be the ARK's own and current at `at`, and the ASK/ASVK must not be on it. A CRL
 * covers only what its issuer issued (RFC 5280): the ARK's CRL speaks for the ASK/ASVK, not for
 * VCEK serials, which the ASK assigns (the go-sev-guest VCEK's serial is 0).
 */
export function checkRevocation(crlBytes: Uint8Array, chain: VerifiedChain, at: Date): void {
  const crl = parseCrl(crlBytes);
  const invalid = (message: string): never => {
    throw new SextantError({ code: 'SNP_CRL_INVALID', message: `CRL: ${message}` });
  };
  if (!bytesEqual(crl.issuerDer, chain.ark.subjectDer)) invalid(`not issued by ${chain.ark.commonName}`);
  if (crl.signatureAlgorithm !== RSASSA_PSS) invalid(`signed with ${crl.signatureAlgorithm}, not RSASSA-PSS`);
  const ok = cryptoVerify('sha384', crl.tbs, { key: chain.ark.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 }, crl.signature);
  if (!ok) invalid(`signature does not verify with ${chain.ark.commonName}`);
  if (crl.nextUpdate && crl.nextUpdate < at) invalid(`expired at ${crl.nextUpdate.toISOString()} (checking at ${at.toISOString()})`);
  for (const c of [chain.intermediate]) {
    const serial = integerHex(Buffer.from(c.x509.serialNumber.length % 2 ? '0' + c.x509.serialNumber : c.x509.serialNumber, 'hex'));
    if (crl.revoked.has(serial)) {
      throw new SextantError({ code: 'SNP_CERT_REVOKED', message: `"${c.commonName}" (serial ${serial}) is revoked by ${chain.ark.commonName}'s CRL` });
    }
  }
}
