import type { X509Certificate } from 'node:crypto';
import { DerReader, type Tlv } from '../../lib/der.js';
import { SextantError } from '../../lib/errors.js';

/**
 * Which TPM an EK certificate was issued for: the subject alternative name's directoryName
 * with the TCG attributes tpmManufacturer (2.23.133.2.1), tpmModel (2.23.133.2.2) and
 * tpmVersion (2.23.133.2.3) (TCG EK Credential Profile 2.x §3.2.9). Real certificates put the
 * three in one multi-valued RDN (Nuvoton, in the Microsoft-issued certificates Debian's
 * go-webauthn ships) or in three RDNs (swtpm), leave the subject empty and mark the SAN
 * critical; all of that is read here. The certificate's bytes were already parsed by
 * node:crypto, so a SAN that is not what it claims only loses the names (no TPM identity),
 * it never fails the attestation: the chain is what decides trust.
 */
export interface TpmIdentity {
  /** The TCG vendor ID as the certificate writes it, e.g. "id:4E544300". */
  manufacturerId: string;
  /** The vendor's name from the TCG TPM Vendor ID Registry, or the ID's ASCII letters ("NTC"). */
  manufacturer: string;
  model?: string;
  /** As written ("id:00070002") ... */
  version?: string;
  /** ... and as firmware major.minor when it is an "id:" of 8 hex digits ("7.2"). */
  firmware?: string;
}

/**
 * TCG TPM Vendor ID Registry (Family 1.2 and 2.0, version 1.07): the 4-byte vendor ID, as
 * ASCII, to the vendor's name. IDs not listed are shown by their letters.
 */
const TCG_VENDORS: Record<string, string> = {
  'AMD\0': 'AMD',
  'ANT\0': 'Ant Group',
  ATML: 'Atmel',
  BRCM: 'Broadcom',
  CSCO: 'Cisco',
  FLYS: 'Flyslice Technologies',
  ROCC: 'Fuzhou Rockchip',
  GOOG: 'Google',
  'HPI\0': 'HPI',
  'HPE\0': 'HPE',
  HISI: 'Huawei',
  'IBM\0': 'IBM',
  'IFX\0': 'Infineon',
  INTC: 'Intel',
  'LEN\0': 'Lenovo',
  MSFT: 'Microsoft',
  'NSM ': 'National Semiconductor',
  'NTZ\0': 'Nationz',
  'NSG\0': 'NSING',
  'NTC\0': 'Nuvoton',
  QCOM: 'Qualcomm',
  SECE: 'SecEdge',
  SMSN: 'Samsung',
  SMSC: 'SMSC',
  'SNS\0': 'Sinosun',
  'STM ': 'STMicroelectronics',
  'TXN\0': 'Texas Instruments',
  'WEC\0': 'Winbond',
  SEAL: 'Wisekey',
};

const OID = {
  subjectAltName: '551d11', // 2.5.29.17
  manufacturer: '6781050201', // 2.23.133.2.1
  model: '6781050202',
  version: '6781050203',
} as const;

/** The TPM identity in an EK certificate's SAN, or undefined when it names none. */
export function tpmIdentity(cert: X509Certificate): TpmIdentity | undefined {
  let attrs: Map<string, string>;
  try {
    attrs = sanDirectoryAttributes(cert.raw);
  } catch {
    return undefined;
  }
  const manufacturerId = attrs.get(OID.manufacturer);
  if (manufacturerId === undefined) return undefined;
  const model = attrs.get(OID.model);
  const version = attrs.get(OID.version);
  return { manufacturerId, manufacturer: vendorName(manufacturerId), model, version, firmware: version && firmwareVersion(version) };
}

/** "id:4E544300" -> "Nuvoton"; an unregistered ID -> its printable letters, else the ID itself. */
export function vendorName(id: string): string {
  const m = /^id:([0-9a-fA-F]{8})$/.exec(id);
  if (!m) return id;
  const ascii = Buffer.from(m[1], 'hex').toString('latin1');
  return TCG_VENDORS[ascii] ?? (/^[\x20-\x7e]+\0*$/.test(ascii) ? ascii.replace(/\0+$/, '') : id);
}

function firmwareVersion(v: string): string | undefined {
  const m = /^id:([0-9a-fA-F]{4})([0-9a-fA-F]{4})$/.exec(v);
  return m ? `${parseInt(m[1], 16)}.${parseInt(m[2], 16)}` : undefined;
}

const fail = (why: string): never => {
  throw new SextantError({ code: 'EK_CERT_UNTRUSTED', message: `EK certificate SAN: ${why}` });
};

function children(t: Tlv): Tlv[] {
  const r = DerReader.of(t, 'EK_CERT_UNTRUSTED');
  const out: Tlv[] = [];
  while (!r.done) out.push(r.next());
  return out;
}

/** Every attribute (OID hex -> string value) of every directoryName in the SAN extension. */
function sanDirectoryAttributes(der: Buffer): Map<string, string> {
  const cert = new DerReader(der, 'EK_CERT_UNTRUSTED').next(0x30);
  const tbs = children(cert)[0];
  const extensions = children(tbs).find((t) => t.tag === 0xa3);
  const out = new Map<string, string>();
  if (!extensions) return out;
  for (const ext of children(children(extensions)[0] ?? fail('empty extensions'))) {
    const [oid, ...rest] = children(ext);
    if (oid.tag !== 0x06 || oid.value.toString('hex') !== OID.subjectAltName) continue;
    const value = rest[rest.length - 1];
    if (value?.tag !== 0x04) fail('extension value is not an OCTET STRING');
    for (const name of children(new DerReader(value.value, 'EK_CERT_UNTRUSTED').next(0x30))) {
      if (name.tag !== 0xa4) continue; // directoryName [4], EXPLICIT Name
      for (const rdn of children(children(name)[0] ?? fail('empty directoryName'))) {
        for (const atv of children(rdn)) {
          const [type, val] = children(atv);
          if (type?.tag === 0x06 && val) out.set(type.value.toString('hex'), val.value.toString('utf8'));
        }
      }
    }
  }
  return out;
}
