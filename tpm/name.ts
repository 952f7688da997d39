/**
 * Names (Part 1 §16): an object's or NV index's Name is nameAlg || H_nameAlg(public area),
 * computed over the exact marshalled public area. A decoded TPM2B keeps its raw bytes, so a
 * Name is computed over what the TPM sent, not over a re-encoding.
 */
import { hash } from '../lib/bytes.js';
import { marshal, unmarshalError, type Sized } from './codec.js';
import { algName, hashAlgName } from './constants.js';
import { TPMS_NV_PUBLIC, TPMT_PUBLIC, type TpmsNvPublic, type TpmtPublic } from './structures.js';

function nameOf(nameAlg: number, publicArea: Uint8Array): Uint8Array {
  const alg = hashAlgName(nameAlg);
  if (!alg) throw unmarshalError(`nameAlg ${algName(nameAlg)} is not a supported hash`);
  const digest = hash(alg, publicArea);
  const name = new Uint8Array(2 + digest.length);
  new DataView(name.buffer).setUint16(0, nameAlg);
  name.set(digest, 2);
  return name;
}

/** The Name of a key: from a decoded TPM2B_PUBLIC (uses its raw bytes) or a TPMT_PUBLIC value. */
export function objectName(pub: TpmtPublic | Sized<TpmtPublic>): Uint8Array {
  if ('value' in pub) return nameOf(pub.value.nameAlg, pub.raw ?? marshal(TPMT_PUBLIC, pub.value));
  return nameOf(pub.nameAlg, marshal(TPMT_PUBLIC, pub));
}

/** The Name of an NV index (from TPM2B_NV_PUBLIC or TPMS_NV_PUBLIC). */
export function nvIndexName(pub: TpmsNvPublic | Sized<TpmsNvPublic>): Uint8Array {
  if ('value' in pub) return nameOf(pub.value.nameAlg, pub.raw ?? marshal(TPMS_NV_PUBLIC, pub.value));
  return nameOf(pub.nameAlg, marshal(TPMS_NV_PUBLIC, pub));
}

/** The Name of a permanent handle, PCR or session: the handle itself, big-endian. */
export function handleName(handle: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, handle >>> 0);
  return b;
}

/**
 * Qualified Name (Part 1 §16.6): QN(child) = nameAlg || H_nameAlg(QN(parent) || Name(child)),
 * with nameAlg taken from the child's Name; a hierarchy's QN is its handle (handleName()).
 * TPMS_ATTEST.qualifiedSigner holds the signing key's QN.
 */
export function qualifiedName(parentQualifiedName: Uint8Array, childName: Uint8Array): Uint8Array {
  if (childName.length < 2) throw unmarshalError('a Name needs at least its nameAlg');
  const nameAlg = new DataView(childName.buffer, childName.byteOffset, 2).getUint16(0);
  const joined = new Uint8Array(parentQualifiedName.length + childName.length);
  joined.set(parentQualifiedName);
  joined.set(childName, parentQualifiedName.length);
  return nameOf(nameAlg, joined);
}
