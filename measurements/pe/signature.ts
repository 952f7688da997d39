import { X509Certificate } from 'node:crypto';
import { DerReader } from '../../lib/der.js';
import { SextantError } from '../../lib/errors.js';
import { parsePe, type PeImage } from './parse.js';

/**
 * The certificates of a PE file's Authenticode signature (the attribute certificate table's
 * WIN_CERTIFICATE holding a PKCS#7 SignedData), the signer first and then the issuers the
 * signature carries, in chain order as far as the bag allows. No cryptographic check here:
 * the firmware decides; this says which certificates it will see.
 */
export interface PeSignature {
  signer: X509Certificate;
  /** signer, its issuer from the bag, that one's issuer, ... */
  chain: X509Certificate[];
}

const WIN_CERT_REVISION_2_0 = 0x0200;
const WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002;

function bad(message: string): SextantError {
  return new SextantError({ code: 'PE_SIGNATURE_INVALID', message });
}

export function peSignature(bytes: Uint8Array, pe: PeImage = parsePe(bytes)): PeSignature | undefined {
  const table = pe.certificateTable;
  if (!table) return undefined;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset + table.offset, table.size);
  if (buf.length < 8) throw bad('certificate table shorter than a WIN_CERTIFICATE header');
  const length = buf.readUInt32LE(0);
  const revision = buf.readUInt16LE(4);
  const type = buf.readUInt16LE(6);
  if (length < 8 || length > buf.length) throw bad(`WIN_CERTIFICATE of ${length} bytes in a table of ${buf.length}`);
  if (revision !== WIN_CERT_REVISION_2_0 || type !== WIN_CERT_TYPE_PKCS_SIGNED_DATA) {
    throw bad(`WIN_CERTIFICATE revision 0x${revision.toString(16)} type ${type}: not an Authenticode PKCS#7 signature`);
  }
  const { certificates, signerSerial } = pkcs7Certificates(buf.subarray(8, length));
  const signer = certificates.find((c) => c.serialNumber.toLowerCase() === signerSerial);
  if (!signer) throw bad('the signature does not carry its signer certificate');
  const chain = [signer];
  for (let c = signer; chain.length <= certificates.length; ) {
    const issuer = certificates.find((i) => !chain.includes(i) && c.checkIssued(i) && c.verify(i.publicKey));
    if (!issuer) break;
    chain.push(issuer);
    c = issuer;
  }
  return { signer, chain };
}

/** ContentInfo -> SignedData -> certificates [0] and the first SignerInfo's serial number (hex). */
function pkcs7Certificates(der: Buffer): { certificates: X509Certificate[]; signerSerial: string } {
  const code = 'PE_SIGNATURE_INVALID' as const;
  const contentInfo = DerReader.of(new DerReader(der, code).next(0x30), code);
  contentInfo.next(0x06); // id-signedData
  const signedData = DerReader.of(DerReader.of(contentInfo.next(0xa0), code).next(0x30), code);
  signedData.next(0x02); // version
  signedData.next(0x31); // digestAlgorithms
  signedData.next(0x30); // contentInfo (SpcIndirectDataContent)
  let el = signedData.next();
  const certificates: X509Certificate[] = [];
  if (el.tag === 0xa0) {
    const bag = DerReader.of(el, code);
    while (!bag.done) {
      const raw = bag.next(0x30).raw;
      try {
        certificates.push(new X509Certificate(raw));
      } catch (e) {
        throw bad(`a certificate in the signature does not parse (${(e as Error).message})`);
      }
    }
    el = signedData.next();
  }
  if (el.tag === 0xa1) el = signedData.next(); // crls
  if (el.tag !== 0x31) throw bad('no signerInfos in the PKCS#7 signature');
  const signerInfo = DerReader.of(DerReader.of(el, code).next(0x30), code);
  signerInfo.next(0x02); // version
  const issuerAndSerial = DerReader.of(signerInfo.next(0x30), code);
  issuerAndSerial.next(0x30); // issuer
  const serial = issuerAndSerial.next(0x02).value;
  // X509Certificate.serialNumber prints the INTEGER's bytes without a leading zero byte.
  let hex = serial.toString('hex');
  while (hex.startsWith('00') && hex.length > 2) hex = hex.slice(2);
  return { certificates, signerSerial: hex.toLowerCase() };
}
