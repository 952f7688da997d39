import { SextantError } from '../../lib/errors.js';
import { guidString } from '../eventlog/uefi.js';
import { EFI_CERT_SHA256, EFI_CERT_X509 } from './guid.js';

/**
 * EFI_SIGNATURE_LIST / EFI_SIGNATURE_DATA (UEFI 2.10, 32.4.1): what PK, KEK, db and dbx
 * hold. A list is {SignatureType GUID, SignatureListSize u32, SignatureHeaderSize u32,
 * SignatureSize u32, header, entries}; each entry is {SignatureOwner GUID, data}.
 */
export interface SignatureEntry {
  /** 'x509': a DER certificate; 'sha256': an image or certificate hash. */
  kind: 'x509' | 'sha256' | 'other';
  /** The list's SignatureType GUID as text (meaningful for 'other'). */
  type: string;
  owner: Buffer;
  data: Buffer;
}

const MAX_LISTS_BYTES = 1 << 20;

function bad(message: string): SextantError {
  return new SextantError({ code: 'SB_KEYS_INVALID', message: `EFI signature list: ${message}` });
}

/** The EFI_SIGNATURE_DATA bytes of one entry: owner GUID then data (what an authority event carries). */
export function signatureData(e: SignatureEntry): Buffer {
  return Buffer.concat([e.owner, e.data]);
}

/**
 * Encodes entries as signature lists the way EDK2 and virt-fw-vars enroll them: one list per
 * X.509 certificate (certificates differ in size), one list for all SHA-256 hashes.
 */
export function encodeSignatureLists(entries: readonly SignatureEntry[]): Buffer {
  const out: Buffer[] = [];
  const list = (type: Buffer, items: readonly SignatureEntry[]): Buffer => {
    const size = 16 + items[0].data.length;
    const header = Buffer.alloc(28);
    type.copy(header, 0);
    header.writeUInt32LE(28 + size * items.length, 16);
    header.writeUInt32LE(0, 20);
    header.writeUInt32LE(size, 24);
    return Buffer.concat([header, ...items.map(signatureData)]);
  };
  const hashes = entries.filter((e) => e.kind === 'sha256');
  for (const e of entries) {
    if (e.kind === 'x509') out.push(list(EFI_CERT_X509, [e]));
    else if (e.kind === 'other') throw bad(`cannot encode signature type ${e.type}`);
  }
  if (hashes.length > 0) out.push(list(EFI_CERT_SHA256, hashes));
  return Buffer.concat(out);
}

/** Decodes concatenated signature lists strictly (sizes must add up exactly). */
export function decodeSignatureLists(bytes: Buffer): SignatureEntry[] {
  if (bytes.length > MAX_LISTS_BYTES) throw bad(`larger than ${MAX_LISTS_BYTES} bytes`);
  const entries: SignatureEntry[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 28) throw bad(`truncated list header at byte ${at}`);
    const type = bytes.subarray(at, at + 16);
    const listSize = bytes.readUInt32LE(at + 16);
    const headerSize = bytes.readUInt32LE(at + 20);
    const sigSize = bytes.readUInt32LE(at + 24);
    if (listSize < 28 || at + listSize > bytes.length) throw bad(`list at byte ${at} claims ${listSize} bytes, ${bytes.length - at} left`);
    if (sigSize <= 16 || (listSize - 28 - headerSize) % sigSize !== 0 || 28 + headerSize > listSize) {
      throw bad(`list at byte ${at}: entry size ${sigSize} does not divide its ${listSize - 28 - headerSize} bytes`);
    }
    const kind = type.equals(EFI_CERT_X509) ? 'x509' : type.equals(EFI_CERT_SHA256) ? 'sha256' : 'other';
    if (kind === 'sha256' && sigSize !== 48) throw bad(`SHA-256 list at byte ${at} with entry size ${sigSize}`);
    for (let p = at + 28 + headerSize; p < at + listSize; p += sigSize) {
      entries.push({ kind, type: guidString(type), owner: Buffer.from(bytes.subarray(p, p + 16)), data: Buffer.from(bytes.subarray(p + 16, p + sigSize)) });
    }
    at += listSize;
  }
  return entries;
}
