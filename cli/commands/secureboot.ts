import { readFile, rename, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';
import { readSigningCertificate, signUki } from '../../image-builder/sign-uki.js';
import { authenticodeDigest } from '../../measurements/pe/authenticode.js';
import { peSignature } from '../../measurements/pe/signature.js';
import { readKeyFolder } from '../../measurements/secureboot/key-folder.js';
import { secureBootVarstore } from '../../measurements/secureboot/sb-vars.js';
import { decodeSignatureLists } from '../../measurements/secureboot/signature-list.js';
import { requireStr } from '../args.js';
import { str, type CommandSpec } from '../command.js';

/** Options of every command that predicts PCR 7: where the firmware's key databases come from. */
export const OVMF_VARS_TEMPLATE = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** The default timestamp of the enrolled variables: fixed, so the same keys give the same file. */
const DEFAULT_VARS_TIME = '2025-01-01T00:00:00Z';

function parseTime(text: string, option: string): Date {
  const d = /^\d+$/.test(text) ? new Date(Number(text) * 1000) : new Date(text);
  if (Number.isNaN(d.getTime())) throw new SextantError({ code: 'USAGE', message: `${option}: expected unix seconds or an RFC 3339 time, got ${text}` });
  return d;
}

async function readOrFail(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (cause) {
    throw new SextantError({ code: 'FILE_NOT_FOUND', message: `cannot read ${what} ${file}: ${(cause as Error).message}`, cause });
  }
}

interface SbVarsResult {
  out: string;
  template: string;
  sha256: string;
  enrolled: Record<string, number>;
}

const sbVars: CommandSpec<SbVarsResult> = {
  path: ['image', 'sb-vars'],
  summary: 'write an OVMF variable store with the key folder\'s PK, KEK, db (and dbx) enrolled and Secure Boot on',
  description: `
The key folder: PK/ (one certificate), KEK/ and db/ (certificates, DER or PEM, or EFI
signature lists *.esl), optional dbx/ (signature lists, or signed updates *.auth/*.bin as
published, whose authentication header is dropped), optional owner-guid (the SignatureOwner
of the certificates). The store starts from --template (Debian's empty OVMF 4M store) and is
reproducible: the same keys, template and --time give the same bytes. Boot it with OVMF's
secure-boot build and SMM (qemu -machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on).`,
  options: {
    keys: { type: 'string', valueName: 'DIR', description: 'the key folder', required: true },
    out: { type: 'string', valueName: 'VARS.fd', description: 'the variable store to write', required: true },
    template: { type: 'string', valueName: 'FILE', description: 'the empty store to start from', default: OVMF_VARS_TEMPLATE },
    time: { type: 'string', valueName: 'TIME', description: 'timestamp of the enrolled variables (unix seconds or RFC 3339)', default: DEFAULT_VARS_TIME },
  },
  async run({ values }) {
    const keysDir = requireStr(values, 'keys');
    const out = requireStr(values, 'out');
    const template = str(values, 'template') ?? OVMF_VARS_TEMPLATE;
    const keys = await readKeyFolder(keysDir);
    const fd = secureBootVarstore(await readOrFail(template, 'variable store template'), keys, parseTime(str(values, 'time') ?? DEFAULT_VARS_TIME, '--time'));
    await writeFile(out + '.tmp', fd);
    await rename(out + '.tmp', out);
    const enrolled: Record<string, number> = {};
    for (const [name, lists] of Object.entries(keys)) if (lists) enrolled[name] = decodeSignatureLists(lists).length;
    return { out, template, sha256: createHash('sha256').update(fd).digest('hex'), enrolled };
  },
  render: (r) => `wrote ${r.out} (sha256 ${r.sha256}) from ${r.template}: ${Object.entries(r.enrolled).map(([k, n]) => `${k} ${n}`).join(', ')}; Secure Boot on`,
};

interface SignUkiResult {
  out: string;
  signer: string;
  authenticodeSha256: string;
}

const signUkiCmd: CommandSpec<SignUkiResult> = {
  path: ['image', 'sign-uki'],
  args: 'UKI',
  summary: 'Authenticode-sign a UKI for Secure Boot (osslsigncode, SHA-256), reproducibly',
  description: `
Signs with an RSA db key and its certificate. The signing time is fixed (--time, default
SOURCE_DATE_EPOCH, else 0), so the same UKI, key and time give the same signed bytes.
Predict the boot with \`sextant measure uki SIGNED --sb-keys DIR\`.`,
  options: {
    key: { type: 'string', valueName: 'KEY.pem', description: 'the db signing key (RSA)', required: true },
    cert: { type: 'string', valueName: 'CERT', description: 'its certificate (enrolled in db, or issued by a db certificate)', required: true },
    out: { type: 'string', valueName: 'OUT', description: 'the signed UKI', required: true },
    time: { type: 'string', valueName: 'SECONDS', description: 'signing time (unix seconds)' },
  },
  async run({ values, positionals, log }) {
    const out = requireStr(values, 'out');
    const timeText = str(values, 'time') ?? process.env.SOURCE_DATE_EPOCH ?? '0';
    if (!/^\d+$/.test(timeText)) throw new SextantError({ code: 'USAGE', message: `--time takes unix seconds, got ${timeText}` });
    const cert = requireStr(values, 'cert');
    const key = requireStr(values, 'key');
    await readSigningCertificate(cert);
    await signUki(positionals[0], out, { key, cert, time: Number(timeText), log });
    const signed = await readOrFail(out, 'signed UKI');
    const sig = peSignature(signed);
    return { out, signer: sig?.signer.subject.replace(/\n/g, ', ') ?? '', authenticodeSha256: authenticodeDigest(signed, 'sha256').toString('hex') };
  },
  render: (r) => `signed ${r.out} as ${r.signer} (Authenticode sha256 ${r.authenticodeSha256})`,
};

export const secureBootCommands: CommandSpec<any>[] = [sbVars, signUkiCmd];
