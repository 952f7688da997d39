import { X509Certificate } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { SextantError } from '../../lib/errors.js';
import { EFI_CERT_TYPE_PKCS7, guidBytes } from './guid.js';
import { decodeSignatureLists, encodeSignatureLists, type SignatureEntry } from './signature-list.js';

/**
 * The Secure Boot key databases a node's firmware holds, as build inputs. A key folder:
 *
 *   KEYS/owner-guid   optional: the SignatureOwner GUID of every certificate below
 *                     (default SEXTANT_OWNER_GUID)
 *   KEYS/PK/          exactly one certificate
 *   KEYS/KEK/ KEYS/db/   one or more certificates
 *   KEYS/dbx/         optional: revocations
 *
 * In each folder, files are taken in name order: certificates (*.crt, *.cer, *.der, *.pem;
 * DER or PEM; a sidecar FILE.owner holding a GUID gives that certificate its own owner, e.g.
 * Microsoft's 77fa9abd-0359-4d32-bd60-28f4e78f784b for its CAs), EFI signature lists (*.esl, taken byte for byte with their own owners), and
 * signed variable updates (*.auth, *.bin: an EFI_VARIABLE_AUTHENTICATION_2 header followed by
 * signature lists, as Microsoft publishes dbx updates; the header is dropped, the lists kept).
 */
export interface KeyDatabases {
  /** The exact variable contents the firmware stores and measures (signature lists); undefined: no such variable. */
  PK?: Buffer;
  KEK?: Buffer;
  db?: Buffer;
  dbx?: Buffer;
}

/** A key folder's databases: PK, KEK and db always present. */
export interface SecureBootKeys extends KeyDatabases {
  PK: Buffer;
  KEK: Buffer;
  db: Buffer;
}

/** sextant's default SignatureOwner for certificates it enrolls. */
export const SEXTANT_OWNER_GUID = '5e7a0c1d-5b00-4c6f-8e2a-7365787461ee';

const CERT_EXT = new Set(['.crt', '.cer', '.der', '.pem']);
const MAX_FILE = 1 << 20;

function bad(message: string): SextantError {
  return new SextantError({ code: 'SB_KEYS_INVALID', message });
}

export async function readKeyFolder(dir: string): Promise<SecureBootKeys> {
  let owner = guidBytes(SEXTANT_OWNER_GUID);
  const ownerFile = path.join(dir, 'owner-guid');
  const ownerText = await readFile(ownerFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (ownerText !== undefined) owner = guidBytes(ownerText);
  const PK = await readDatabase(dir, 'PK', owner, true);
  if (PK === undefined || decodeSignatureLists(PK).length !== 1) throw bad(`${path.join(dir, 'PK')}: PK must hold exactly one certificate`);
  const KEK = await readDatabase(dir, 'KEK', owner, true);
  const db = await readDatabase(dir, 'db', owner, true);
  const dbx = await readDatabase(dir, 'dbx', owner, false);
  return { PK, KEK: KEK!, db: db!, dbx };
}

async function readDatabase(dir: string, name: string, owner: Buffer, required: boolean): Promise<Buffer | undefined> {
  const folder = path.join(dir, name);
  let files: string[];
  try {
    files = (await readdir(folder)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    if (required) throw bad(`${folder} is missing: a key folder needs PK/, KEK/ and db/`);
    return undefined;
  }
  const parts: Buffer[] = [];
  for (const f of files) {
    const file = path.join(folder, f);
    const ext = path.extname(f).toLowerCase();
    if (ext === '.owner') continue;
    if ((await stat(file)).size > MAX_FILE) throw bad(`${file} is larger than ${MAX_FILE} bytes`);
    const bytes = await readFile(file);
    if (CERT_EXT.has(ext)) {
      const own = files.includes(f + '.owner') ? guidBytes(await readFile(file + '.owner', 'utf8')) : owner;
      parts.push(encodeSignatureLists([{ kind: 'x509', type: '', owner: own, data: certificateDer(bytes, file) }]));
    }
    else if (ext === '.esl') parts.push(checkedLists(bytes, file));
    else if (ext === '.auth' || ext === '.bin') parts.push(checkedLists(stripAuthentication2(bytes, file), file));
    else throw bad(`${file}: expected a certificate (.crt .cer .der .pem), a signature list (.esl) or a signed update (.auth .bin)`);
  }
  if (parts.length === 0 && required) throw bad(`${folder} holds no certificate or signature list`);
  return Buffer.concat(parts);
}

function certificateDer(bytes: Buffer, file: string): Buffer {
  try {
    return Buffer.from(new X509Certificate(bytes).raw);
  } catch (e) {
    throw bad(`${file} is not an X.509 certificate (${(e as Error).message})`);
  }
}

function checkedLists(bytes: Buffer, file: string): Buffer {
  try {
    decodeSignatureLists(bytes);
  } catch (e) {
    throw bad(`${file}: ${(e as Error).message}`);
  }
  return bytes;
}

/** EFI_VARIABLE_AUTHENTICATION_2: EFI_TIME (16) + WIN_CERTIFICATE_UEFI_GUID (dwLength covers itself). */
function stripAuthentication2(bytes: Buffer, file: string): Buffer {
  if (bytes.length < 16 + 24) throw bad(`${file}: too short for an EFI_VARIABLE_AUTHENTICATION_2 header`);
  const dwLength = bytes.readUInt32LE(16);
  const certType = bytes.readUInt16LE(22);
  if (certType !== 0x0ef1 || !bytes.subarray(24, 40).equals(EFI_CERT_TYPE_PKCS7) || 16 + dwLength > bytes.length || dwLength < 24) {
    throw bad(`${file}: not an EFI_VARIABLE_AUTHENTICATION_2 (PKCS#7) signed update`);
  }
  return bytes.subarray(16 + dwLength);
}

/** The certificates and hashes of a database, decoded (for descriptions and authority lookup). */
export function entriesOf(lists: Buffer | undefined): SignatureEntry[] {
  return lists ? decodeSignatureLists(lists) : [];
}
