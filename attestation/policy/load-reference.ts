import { readFile } from 'node:fs/promises';
import { hash, toHex } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import type { MeasurementFile } from '../../measurements/format/types.js';
import { loadSignedMeasurements } from '../../measurements/verify/load-signed.js';
import type { ReferenceSet } from './reference.js';

/**
 * Loads a signed measurements file into a reference set. The signature is checked over the
 * file's exact bytes before anything is parsed; a bad or missing signature refuses (the
 * service does not start, or a reload keeps the old set).
 */
export async function loadReferenceSet(file: string, sigFile: string, publicKeyPem: string): Promise<ReferenceSet> {
  const signed = await readSignedMeasurements(file, sigFile);
  return referenceSetFromSigned(signed, publicKeyPem, file);
}

/** A measurements file and its signature, as bytes (what a replica publishes to the others). */
export interface SignedMeasurementsBytes {
  bytes: Buffer;
  sig: string;
}

export async function readSignedMeasurements(file: string, sigFile: string): Promise<SignedMeasurementsBytes> {
  let bytes: Buffer;
  let sig: string;
  try {
    bytes = await readFile(file);
  } catch (cause) {
    throw new SextantError({ code: 'FILE_NOT_FOUND', message: `cannot read measurements ${file}`, cause });
  }
  try {
    sig = await readFile(sigFile, 'utf8');
  } catch (cause) {
    throw new SextantError({ code: 'SIGNATURE_INVALID', message: `measurements signature ${sigFile} is missing`, cause });
  }
  return { bytes, sig };
}

/** Checks the signature over the exact bytes, then makes the reference set; `name` says where they came from. */
export function referenceSetFromSigned(signed: SignedMeasurementsBytes, publicKeyPem: string, name: string): ReferenceSet {
  return verifiedMeasurements(signed, publicKeyPem, name).set;
}

/** A verified signed file: its reference set, the image version it declares and the SHA-256 of its bytes. */
export interface VerifiedMeasurements {
  set: ReferenceSet;
  imageVersion: string;
  sha256: string;
}

export function verifiedMeasurements({ bytes, sig }: SignedMeasurementsBytes, publicKeyPem: string, name: string): VerifiedMeasurements {
  const m = loadSignedMeasurements(bytes, sig.trim(), publicKeyPem);
  if (m.bank !== 'sha256') {
    throw new SextantError({ code: 'MEASUREMENTS_INVALID', message: `${name} describes the ${m.bank} bank; the agent quotes SHA-256` });
  }
  const sha256 = toHex(hash('sha256', bytes));
  return { set: referenceSetOf(m, `${m.image.name} ${m.image.version} (sha256:${sha256.slice(0, 16)})`), imageVersion: m.image.version, sha256 };
}

/** The reference set of a measurements file already trusted (its signature checked), named `label`. */
export function referenceSetOf(m: Pick<MeasurementFile, 'pcrs'>, label: string): ReferenceSet {
  const pcrs: ReferenceSet['pcrs'] = {};
  for (const [index, e] of Object.entries(m.pcrs)) pcrs[index] = { expected: e.expected.toLowerCase(), enforced: e.enforced, ...(e.events && { events: e.events }) };
  return { label, pcrs };
}
