import { createHash, type X509Certificate } from 'node:crypto';
import { readFile, rename, utimes } from 'node:fs/promises';
import { SextantError } from '../lib/errors.js';
import { authorizingDbEntry } from '../measurements/secureboot/pcr7.js';
import { loadSecureBootState, type SecureBootState } from '../measurements/secureboot/predict.js';
import { peSignature } from '../measurements/pe/signature.js';
import { extractUkiFromDisk, replaceUkiOnDisk } from './extract-uki.js';
import { attachUkiSignature, describeSigner, readSigningCertificate, signUki, type UkiSigner } from './sign-uki.js';

/**
 * How the build signs its UKI: with the db key (`--sb-key/--sb-cert`), or, when an admin
 * reproduces a signed release without that key, with the release's own signature moved onto
 * the rebuilt UKI (it only fits when the rebuild is the same UKI).
 */
export type UkiSigning = { kind: 'key'; key: string; cert: string } | { kind: 'release-signature'; signedUki: string };

/** What manifest.json says about Secure Boot. */
export interface SecureBootRecord {
  signed: boolean;
  signer?: UkiSigner;
  /** The signing time in the signature (SourceDateEpoch of the configuration), RFC 3339. */
  signingTime?: string;
  /** SHA-256 of each key database PCR 7 was predicted from (null: the variable is absent). */
  keyDatabases?: Record<'PK' | 'KEK' | 'db' | 'dbx', string | null>;
  note: string;
}

export interface SecureBootPlan {
  signing?: UkiSigning;
  keys?: SecureBootState;
}

/**
 * Checks the Secure Boot inputs before the (minutes long) mkosi run: an RSA signing
 * certificate, a readable key folder, and that the folder's db authorizes the signer (else
 * the firmware would refuse the image: SB_NOT_AUTHORIZED). A key folder without a signer is a
 * USAGE error: Secure Boot on refuses an unsigned UKI.
 */
export async function planSecureBoot(o: { signing?: UkiSigning; keysDir?: string }): Promise<SecureBootPlan> {
  if (o.keysDir && !o.signing) throw new SextantError({ code: 'USAGE', message: '--sb-keys predicts PCR 7 for a signed UKI: give --sb-key and --sb-cert too' });
  const keys = o.keysDir ? await loadSecureBootState({ keysDir: o.keysDir }) : undefined;
  if (o.signing?.kind === 'key') {
    const cert: X509Certificate = await readSigningCertificate(o.signing.cert);
    if (keys) authorizingDbEntry(keys.keys, { signer: cert, chain: [cert] });
  }
  return { signing: o.signing, keys };
}

const sha256 = (b: Buffer | undefined): string | null => (b === undefined ? null : createHash('sha256').update(b).digest('hex'));

/**
 * Signs the built UKI in place and puts it onto the disk image's ESP, so the disk boots the
 * signed UKI and both artifacts stay reproducible: the signing time is fixed (`time`, unix
 * seconds) and the FAT entry keeps that time as mkosi gave the unsigned UKI.
 */
export async function signBuiltUki(ukiFile: string, diskFile: string, plan: SecureBootPlan, time: number, log?: (l: string) => void): Promise<SecureBootRecord> {
  const keyDatabases = plan.keys && {
    PK: sha256(plan.keys.keys.PK),
    KEK: sha256(plan.keys.keys.KEK),
    db: sha256(plan.keys.keys.db),
    dbx: sha256(plan.keys.keys.dbx),
  };
  if (!plan.signing) return { signed: false, note: 'the UKI is not signed: firmware with Secure Boot on refuses it, and PCR 7 is not predicted' };
  const signed = `${ukiFile}.signed`;
  if (plan.signing.kind === 'key') await signUki(ukiFile, signed, { key: plan.signing.key, cert: plan.signing.cert, time, log });
  else if (!(await attachUkiSignature(ukiFile, plan.signing.signedUki, signed, log))) {
    return { signed: false, note: `the rebuilt UKI is not the one the signature of ${plan.signing.signedUki} covers: left unsigned` };
  }
  await rename(signed, ukiFile);
  await utimes(ukiFile, time, time);
  await replaceUkiOnDisk(diskFile, ukiFile, { keepMtime: true, log });
  const bytes = await readFile(ukiFile);
  if (!(await extractUkiFromDisk(diskFile, log)).equals(bytes)) {
    throw new SextantError({ code: 'IMAGE_MISMATCH', message: `${diskFile}: the ESP does not hold the signed UKI after writing it` });
  }
  const sig = peSignature(bytes);
  if (!sig) throw new SextantError({ code: 'INTERNAL', message: `${ukiFile}: no signature after signing` });
  return {
    signed: true,
    signer: describeSigner(sig.signer),
    signingTime: new Date(time * 1000).toISOString().replace('.000Z', 'Z'),
    ...(keyDatabases && { keyDatabases }),
    note: keyDatabases ? 'signed; PCR 7 predicted from the key folder and enforced' : 'signed; no key folder given, so PCR 7 is not predicted',
  };
}

/** SourceDateEpoch of an mkosi configuration (mkosi.conf), the build's fixed time; 0 when unset. */
export async function configSourceDateEpoch(mkosiConf: string): Promise<number> {
  const text = await readFile(mkosiConf, 'utf8').catch(() => '');
  const m = /^SourceDateEpoch=(\d+)\s*$/m.exec(text);
  return m ? Number(m[1]) : 0;
}
