import { X509Certificate, createHash, type KeyObject } from 'node:crypto';
import { toHex } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { DerReader, TAG, oidString, type Tlv } from './der.js';
import type { AmdProduct } from './roots.js';
import type { TcbParts } from './tcb.js';

/**
 * AMD's SEV-SNP certificates: the VCEK (chip- and TCB-specific) or VLEK (per cloud provider)
 * that signs reports, and its ASK/ASVK + ARK chain. node:crypto's X509Certificate does the
 * signatures (RSA-PSS SHA-384 on AMD's certificates); the AMD extensions it does not expose
 * are read with the bounded DER reader.
 */
export type SignerKind = 'vcek' | 'vlek';

/** AMD signs its ARK, ASK/ASVK and VCEK/VLEK certificates with RSASSA-PSS (SHA-384). */
export const RSASSA_PSS = '1.2.840.113549.1.1.10';
const AMD_EXT = '1.3.6.1.4.1.3704.1';
/** VCEK/VLEK extensions (AMD "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface Specification"). */
const EXT = {
  productName: `${AMD_EXT}.2`,
  blSpl: `${AMD_EXT}.3.1`,
  teeSpl: `${AMD_EXT}.3.2`,
  snpSpl: `${AMD_EXT}.3.3`,
  ucodeSpl: `${AMD_EXT}.3.8`,
  fmcSpl: `${AMD_EXT}.3.9`,
  hwId: `${AMD_EXT}.4`,
  cspId: `${AMD_EXT}.5`,
} as const;

export interface AmdCert {
  x509: X509Certificate;
  /** Read eagerly: node:crypto decodes the key lazily and throws a plain error on a bad one. */
  publicKey: KeyObject;
  der: Uint8Array;
  sha256: string;
  commonName: string;
  /** OID of the outer signatureAlgorithm. */
  signatureAlgorithm: string;
  /** The DER of the subject Name (a CRL's issuer must equal it). */
  subjectDer: Uint8Array;
  /** AMD extensions by OID: the extnValue content bytes. */
  amdExtensions: Map<string, Uint8Array>;
}

export interface SignerCert extends AmdCert {
  kind: SignerKind;
  /** productName extension, e.g. "Milan-B0" (VCEK) or "Milan" (VLEK). */
  productName: string;
  /** The TCB the key was derived for, from the SPL extensions. */
  tcb: TcbParts;
  /** VCEK only: the chip's hwID (64 bytes before Turin, 8 on Turin), hex. */
  hwId?: string;
  /** VLEK only: the cloud provider it was issued to, e.g. "CN=cc-eu-west-1.amazonaws.com". */
  cspId?: string;
}

function certFail(message: string, cause?: unknown): never {
  throw new SextantError({ code: 'SNP_CERT_MALFORMED', message, cause });
}

/** Splits PEM (any number of CERTIFICATE blocks) or concatenated DER into DER certificates (at most 8). */
export function splitCertificates(bytes: Uint8Array, what: string): Uint8Array[] {
  const text = Buffer.from(bytes).toString('latin1');
  const out: Uint8Array[] = [];
  if (text.includes('-----BEGIN')) {
    for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g)) {
      out.push(Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
    }
  } else {
    const r = new DerReader(bytes, 'SNP_CERT_MALFORMED', what);
    for (let p = 0; p < bytes.length; ) {
      const t = r.expect(TAG.SEQUENCE, p);
      out.push(bytes.subarray(t.start, t.end));
      p = t.end;
    }
  }
  if (out.length === 0) certFail(`${what}: no certificate found (expected DER or PEM)`);
  if (out.length > 8) certFail(`${what}: ${out.length} certificates, at most 8 expected`);
  return out;
}

export function parseAmdCert(der: Uint8Array, what: string): AmdCert {
  let x509: X509Certificate;
  let publicKey: KeyObject;
  try {
    x509 = new X509Certificate(Buffer.from(der));
    publicKey = x509.publicKey;
  } catch (cause) {
    certFail(`${what} is not an X.509 certificate with a valid public key`, cause);
  }
  const r = new DerReader(der, 'SNP_CERT_MALFORMED', what);
  const cert = r.expect(TAG.SEQUENCE, 0);
  if (cert.end !== der.length) certFail(`${what}: ${der.length - cert.end} bytes after the certificate`);
  const [tbs, sigAlg] = r.children(cert);
  const algOid = r.expect(TAG.OID, sigAlg.valueStart, sigAlg.end);
  // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, ...
  const fields = r.children(tbs);
  const subject = fields[fields[0]?.tag === 0xa0 ? 5 : 4];
  if (!subject || subject.tag !== TAG.SEQUENCE) certFail(`${what}: no subject Name`);
  return {
    x509,
    publicKey,
    der,
    sha256: createHash('sha256').update(der).digest('hex'),
    commonName: /^CN=(.*)$/m.exec(x509.subject)?.[1] ?? '',
    signatureAlgorithm: oidString(algOid.value),
    subjectDer: r.raw(subject),
    amdExtensions: amdExtensions(r, fields),
  };
}

function amdExtensions(r: DerReader, tbsFields: readonly Tlv[]): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  // Extensions are the [3] EXPLICIT field, the last one of TBSCertificate.
  const ctx3 = tbsFields.find((t) => t.tag === 0xa3);
  if (!ctx3) return out;
  const [list] = r.children(ctx3);
  for (const ext of r.children(list)) {
    const parts = r.children(ext);
    const oid = oidString(r.expect(TAG.OID, parts[0].start, ext.end).value);
    const value = parts[parts.length - 1];
    if (value.tag !== TAG.OCTET_STRING) certFail(`extension ${oid} has no OCTET STRING value`);
    if (oid.startsWith(AMD_EXT + '.')) out.set(oid, value.value);
  }
  return out;
}

/** The VCEK or VLEK: an EC P-384 key with AMD's product and TCB extensions. */
export function parseSignerCert(bytes: Uint8Array): SignerCert {
  const ders = splitCertificates(bytes, 'VCEK/VLEK certificate');
  const base = parseAmdCert(ders[0], 'VCEK/VLEK certificate');
  const kind: SignerKind | undefined = base.commonName === 'SEV-VCEK' ? 'vcek' : base.commonName === 'SEV-VLEK' ? 'vlek' : undefined;
  if (!kind) certFail(`certificate "${base.commonName}" is neither a VCEK (CN=SEV-VCEK) nor a VLEK (CN=SEV-VLEK)`);
  const details = base.publicKey.asymmetricKeyDetails;
  if (base.publicKey.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'secp384r1') {
    certFail(`${kind.toUpperCase()} key is not ECDSA P-384`);
  }
  const ext = base.amdExtensions;
  const spl = (oid: string, required = true): number | undefined => {
    const v = ext.get(oid);
    if (!v) return required ? certFail(`${kind.toUpperCase()} lacks the TCB extension ${oid}`) : undefined;
    const inner = new DerReader(v, 'SNP_CERT_MALFORMED', `${kind.toUpperCase()} extension ${oid}`);
    const t = inner.tlv(0);
    if (t.end !== v.length) certFail(`extension ${oid}: trailing bytes`);
    return inner.smallUint(t);
  };
  const productRaw = ext.get(EXT.productName);
  if (!productRaw) certFail(`${kind.toUpperCase()} lacks the productName extension ${EXT.productName}`);
  const productName = ia5(productRaw, EXT.productName);
  const fmc = spl(EXT.fmcSpl, false);
  const tcb: TcbParts = {
    ...(fmc !== undefined && { fmc }),
    bootloader: spl(EXT.blSpl)!,
    tee: spl(EXT.teeSpl)!,
    snp: spl(EXT.snpSpl)!,
    microcode: spl(EXT.ucodeSpl)!,
  };
  const hw = ext.get(EXT.hwId);
  if (kind === 'vcek' && !hw) certFail(`VCEK lacks the hwID extension ${EXT.hwId}`);
  const csp = ext.get(EXT.cspId);
  return {
    ...base,
    kind,
    productName,
    tcb,
    ...(kind === 'vcek' && hw && { hwId: toHex(hw) }),
    ...(kind === 'vlek' && csp && { cspId: ia5(csp, EXT.cspId) }),
  };
}

function ia5(v: Uint8Array, oid: string): string {
  const r = new DerReader(v, 'SNP_CERT_MALFORMED', `extension ${oid}`);
  const t = r.expect(TAG.IA5_STRING, 0);
  if (t.end !== v.length) certFail(`extension ${oid}: trailing bytes`);
  const s = Buffer.from(t.value).toString('latin1');
  if (!/^[\x20-\x7e]*$/.test(s)) certFail(`extension ${oid}: not printable`);
  return s;
}

/** The product line a productName names ("Milan-B0" -> Milan), if it is one sextant knows. */
export function productOf(productName: string): AmdProduct | undefined {
  const head = productName.split('-')[0];
  return head === 'Milan' || head === 'Genoa' || head === 'Turin' ? head : undefined;
}
