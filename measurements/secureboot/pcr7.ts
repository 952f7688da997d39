import { X509Certificate } from 'node:crypto';
import { hash, toHex, type HashAlg } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { extendAll } from '../pcr/extend.js';
import type { PeSignature } from '../pe/signature.js';
import { EFI_GLOBAL_VARIABLE, EFI_IMAGE_SECURITY_DATABASE } from './guid.js';
import { entriesOf, type KeyDatabases } from './key-folder.js';
import { signatureData, type SignatureEntry } from './signature-list.js';
import { uefiVariableData } from './variable-data.js';

/** One predicted PCR 7 event, with its exact event data (UEFI_VARIABLE_DATA) as hex. */
export interface Pcr7Event {
  pcr: 7;
  type: 'EV_EFI_VARIABLE_DRIVER_CONFIG' | 'EV_SEPARATOR' | 'EV_EFI_VARIABLE_AUTHORITY';
  digest: string;
  description: string;
  /** What a refusal names when this event differs: the variable, or `authority <subject>`. */
  component: string;
  data: string;
}

export interface Pcr7Prediction {
  bank: HashAlg;
  value: string;
  events: Pcr7Event[];
}

/**
 * PCR 7 of a UEFI boot that runs a UKI directly (no shim), as EDK2's Tcg2Dxe and
 * DxeImageVerificationLib measure it (TCG PC Client PFP 3.3.4.8, 10.4.4):
 * EV_EFI_VARIABLE_DRIVER_CONFIG for SecureBoot, PK, KEK, db and dbx in that order (each
 * variable's exact stored bytes; an absent one with no data), the separator, then with Secure
 * Boot on one EV_EFI_VARIABLE_AUTHORITY: the db entry (EFI_SIGNATURE_DATA) that authorized
 * the UKI. Each authority is measured once per boot; the kernel the stub then loads is
 * verified by the stub's own override, not by db, so it adds none (seen on real boots).
 * Assumed: no option ROMs (their authorities would add events), no dbt.
 */
export function predictPcr7(
  keys: KeyDatabases | undefined,
  opts: { secureBoot: boolean; signature?: PeSignature; bank?: HashAlg },
): Pcr7Prediction {
  const bank = opts.bank ?? 'sha256';
  const events: Pcr7Event[] = [];
  const variable = (vendor: Buffer, name: string, data: Buffer, type: Pcr7Event['type'], description: string, component: string): void => {
    const bytes = uefiVariableData(vendor, name, data);
    events.push({ pcr: 7, type, digest: toHex(hash(bank, bytes)), description, component, data: toHex(bytes) });
  };
  variable(EFI_GLOBAL_VARIABLE, 'SecureBoot', Buffer.from([opts.secureBoot ? 1 : 0]), 'EV_EFI_VARIABLE_DRIVER_CONFIG', `SecureBoot = ${opts.secureBoot ? 1 : 0}`, 'SecureBoot');
  const dbs: [Buffer, string, Buffer | undefined][] = [
    [EFI_GLOBAL_VARIABLE, 'PK', keys?.PK],
    [EFI_GLOBAL_VARIABLE, 'KEK', keys?.KEK],
    [EFI_IMAGE_SECURITY_DATABASE, 'db', keys?.db],
    [EFI_IMAGE_SECURITY_DATABASE, 'dbx', keys?.dbx],
  ];
  for (const [vendor, name, data] of dbs) {
    variable(vendor, name, data ?? Buffer.alloc(0), 'EV_EFI_VARIABLE_DRIVER_CONFIG', `${name} = ${describeDatabase(data)}`, name);
  }
  const sep = Buffer.alloc(4);
  events.push({ pcr: 7, type: 'EV_SEPARATOR', digest: toHex(hash(bank, sep)), description: 'separator', component: 'separator', data: toHex(sep) });
  if (opts.secureBoot) {
    const entry = authorizingDbEntry(keys, opts.signature);
    const cert = new X509Certificate(entry.data);
    variable(EFI_IMAGE_SECURITY_DATABASE, 'db', signatureData(entry), 'EV_EFI_VARIABLE_AUTHORITY', `db: ${cert.subject.replace(/\n/g, ', ')}`, `authority ${cert.subject.replace(/\n/g, ', ')}`);
  }
  return { bank, value: toHex(extendAll(bank, events.map((e) => Buffer.from(e.digest, 'hex')))), events };
}

function describeDatabase(lists: Buffer | undefined): string {
  if (lists === undefined) return 'absent';
  const entries = entriesOf(lists);
  if (entries.length === 0) return 'empty';
  const x509 = entries.filter((e) => e.kind === 'x509').length;
  const sha = entries.filter((e) => e.kind === 'sha256').length;
  return [x509 ? `${x509} X509` : '', sha ? `${sha} SHA256` : '', entries.length - x509 - sha ? `${entries.length - x509 - sha} other` : ''].filter(Boolean).join(', ');
}

/**
 * The db entry the firmware finds first (db order) that authorizes the signature: a
 * certificate that is the signer or one of its issuers (EDK2 verifies the PKCS#7 signature
 * with each db certificate as the trust anchor in turn). A signer whose certificate or an
 * issuer is in dbx is refused by the firmware, and so here.
 */
export function authorizingDbEntry(keys: KeyDatabases | undefined, signature: PeSignature | undefined): SignatureEntry {
  if (!signature) throw new SextantError({ code: 'SB_NOT_AUTHORIZED', message: 'the UKI is not signed: with Secure Boot on the firmware refuses it' });
  const chain = signature.chain;
  const revoked = entriesOf(keys?.dbx).find((e) => e.kind === 'x509' && chain.some((c) => Buffer.from(c.raw).equals(e.data)));
  if (revoked) throw new SextantError({ code: 'SB_NOT_AUTHORIZED', message: `the UKI's signing chain holds a certificate revoked in dbx (${new X509Certificate(revoked.data).subject})` });
  for (const entry of entriesOf(keys?.db)) {
    if (entry.kind !== 'x509') continue;
    const anchor = new X509Certificate(entry.data);
    const authorizes = chain.some((c) => Buffer.from(c.raw).equals(entry.data) || (c.checkIssued(anchor) && c.verify(anchor.publicKey)));
    if (authorizes) return entry;
  }
  throw new SextantError({
    code: 'SB_NOT_AUTHORIZED',
    message: `no db certificate authorizes the UKI's signer (${signature.signer.subject.replace(/\n/g, ', ')}): the firmware would refuse it`,
  });
}
