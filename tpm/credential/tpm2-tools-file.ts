/**
 * The credential file of tpm2_makecredential / tpm2_activatecredential (tpm2-tools 5.x):
 * magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. Lets a credential made
 * by sextant be activated with tpm2-tools (and the other way round) when debugging a node.
 */
import { fail } from '../../lib/errors.js';
import { marshal, Reader, u32 } from '../codec.js';
import { TPM2B_ENCRYPTED_SECRET, TPM2B_ID_OBJECT } from '../structures.js';
import type { Credential } from './make-credential.js';

const MAGIC = 0xbadcc0de;
const VERSION = 1;

export function encodeTpm2ToolsCredential(c: Credential): Uint8Array {
  const head = new Uint8Array(8);
  const dv = new DataView(head.buffer);
  dv.setUint32(0, MAGIC);
  dv.setUint32(4, VERSION);
  return Buffer.concat([head, marshal(TPM2B_ID_OBJECT, c.credentialBlob), marshal(TPM2B_ENCRYPTED_SECRET, c.encryptedSecret)]);
}

export function decodeTpm2ToolsCredential(file: Uint8Array): Credential {
  const r = new Reader(file);
  const magic = u32.decode(r);
  const version = u32.decode(r);
  if (magic !== MAGIC || version !== VERSION) {
    fail('TPM_UNMARSHAL', `not a tpm2-tools credential file (magic 0x${magic.toString(16)}, version ${version})`);
  }
  const credentialBlob = TPM2B_ID_OBJECT.decode(r);
  const encryptedSecret = TPM2B_ENCRYPTED_SECRET.decode(r);
  if (r.remaining !== 0) fail('TPM_UNMARSHAL', 'trailing bytes after a tpm2-tools credential');
  return { credentialBlob, encryptedSecret };
}
