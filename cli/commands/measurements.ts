import { sha256File } from '../../lib/hash-file.js';
import { readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { zeroize } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { parsePcrList, requireStr } from '../args.js';
import { predictUkiPcr7, withPcr7 } from '../../measurements/secureboot/predict.js';
import { SECURE_BOOT_OPTIONS, secureBootFromOptions } from './secureboot-options.js';
import { bool, str, type CommandSpec, type OptionValues } from '../command.js';
import { parseMeasurementFile } from '../../measurements/format/parse.js';
import type { BootAssumptions, ImageIdentity, MeasurementFile } from '../../measurements/format/types.js';
import { loadSigningKey } from '../../measurements/sign/signing-key.js';
import { signMeasurementFile } from '../../measurements/sign/sign-measurements.js';
import { keyFingerprint, loadVerificationKey } from '../../measurements/verify/verification-key.js';
import { verifyBlob } from '../../measurements/verify/verify-blob.js';
import { compareWithPrediction, type ComparisonReport, type PcrVerdictRow } from '../../measurements/verify/compare.js';
import { eventName } from '../../measurements/verify/diff-events.js';
import type { ImagePrecompute } from '../../measurements/format/prediction.js';
import { precomputeUkiFile } from '../../measurements/uki/precompute-file.js';
import { measurementFileFromPrediction } from '../../measurements/format/from-prediction.js';
import { serializeMeasurementFile } from '../../measurements/format/parse.js';
import { importConstellationBytes } from '../../measurements/constellation/import.js';
import { serializeConstellation, toConstellation } from '../../measurements/constellation/export.js';

/** The passphrase of an encrypted signing key comes from the environment, never argv. */
const PASSPHRASE_ENV = 'SEXTANT_KEY_PASSPHRASE';

/** Recomputes a UKI's PCRs for `verify --image` and `create`: measurements/uki's precompute. */
const precomputeImage: ImagePrecompute = precomputeUkiFile;

async function sha256OfFile(path: string, what: string): Promise<string> {
  try {
    return await sha256File(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SextantError({ code: code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'IO_FAILED', message: `cannot read ${what} ${path}: ${(e as Error).message}`, cause: e });
  }
}

async function readInput(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SextantError({ code: 'FILE_NOT_FOUND', message: `${what} ${path} does not exist`, cause: e });
    throw new SextantError({ code: 'IO_FAILED', message: `cannot read ${what} ${path}: ${(e as Error).message}`, cause: e });
  }
}

async function writeOutput(path: string, bytes: Uint8Array | string, what: string): Promise<void> {
  try {
    await writeFile(path, bytes);
  } catch (e) {
    throw new SextantError({ code: 'IO_FAILED', message: `cannot write ${what} ${path}: ${(e as Error).message}`, cause: e });
  }
}

/** `--format` of import/export (required, one of these: cli/main.ts checks). */
const FOREIGN_FORMATS = ['constellation'] as const;

const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function describeImage(i: ImageIdentity): string {
  const parts = [`${i.name} ${i.version}`];
  if (i.stubVersion) parts.push(`stub ${i.stubVersion}`);
  if (i.ukiSha256) parts.push(`UKI sha256 ${i.ukiSha256}`);
  if (i.diskImageSha256) parts.push(`disk sha256 ${i.diskImageSha256}`);
  return parts.join(', ');
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function pcrTable(file: MeasurementFile): string {
  const rows = Object.entries(file.pcrs).map(([pcr, p]) => [
    pcr,
    p.expected,
    p.enforced ? 'enforced' : 'warn-only',
    p.events ? [...new Set(p.events.map(eventName))].join(', ') || '(no events)' : '(no manifest)',
  ]);
  return table(['pcr', `expected (${file.bank})`, 'policy', 'components'], rows);
}

function verdictText(r: PcrVerdictRow): string {
  switch (r.verdict) {
    case 'match':
      return 'ok';
    case 'mismatch':
      return r.enforced ? 'MISMATCH' : 'mismatch (warn-only)';
    case 'not-recomputed':
      return 'not recomputed';
    case 'not-in-file':
      return 'not in file';
  }
}

function comparisonText(report: ComparisonReport): string {
  const rows = report.rows.map((r) => [String(r.pcr), r.expected ?? '-', r.computed ?? '-', verdictText(r)]);
  const out = [table(['pcr', 'expected', 'computed', 'ok'], rows)];
  for (const r of report.rows.filter((x) => x.verdict === 'mismatch')) {
    if (!r.hasManifest) out.push(`PCR ${r.pcr}: the file has no event manifest for this PCR, so the component cannot be named`);
    for (const d of r.differences) {
      const what =
        d.kind === 'changed'
          ? `measured ${d.computedDigest}, expected ${d.expectedDigest}`
          : d.kind === 'missing'
            ? `expected ${d.expectedDigest}, not measured`
            : `measured ${d.computedDigest}, not expected`;
      out.push(`PCR ${r.pcr}: ${d.component}: ${what}`);
    }
  }
  return out.join('\n');
}

interface SignResult {
  file: string;
  signatureFile: string;
  sha256: string;
  image: ImageIdentity;
}

const sign: CommandSpec<SignResult> = {
  path: ['measurements', 'sign'],
  summary: 'sign a measurements file: writes FILE.sig (base64 DER ECDSA P-256 over SHA-256, as cosign sign-blob)',
  args: 'FILE',
  description: `
The file must be a valid measurements file; its exact bytes are signed. The key is an
ECDSA P-256 private key in PEM (openssl ecparam -genkey -name prime256v1). An encrypted
PKCS#8 key takes its passphrase from $${PASSPHRASE_ENV}. Check with:
  openssl dgst -sha256 -verify pub.pem -signature <(base64 -d FILE.sig) FILE`,
  options: {
    key: { type: 'string', valueName: 'KEY.pem', description: 'ECDSA P-256 private key (PEM)', required: true },
    out: { type: 'string', valueName: 'SIG', description: 'where to write the signature (default: FILE.sig)' },
  },
  async run({ values, positionals }) {
    const keyPath = requireStr(values, 'key');
    const [path] = positionals;
    const out = str(values, 'out') ?? `${path}.sig`;
    const bytes = await readInput(path, 'measurements file');
    const pem = await readInput(keyPath, 'key');
    let signed;
    try {
      signed = signMeasurementFile(bytes, loadSigningKey(pem, process.env[PASSPHRASE_ENV]));
    } finally {
      zeroize(pem);
    }
    await writeOutput(out, signed.signature, 'signature');
    return { file: path, signatureFile: out, sha256: sha256Hex(bytes), image: signed.file.image };
  },
  render: (r) => `signed ${r.file} (sha256 ${r.sha256}): wrote ${r.signatureFile}`,
};

interface VerifyResult {
  ok: boolean;
  file: string;
  signatureFile: string;
  key: string;
  image: ImageIdentity;
  bank: string;
  /** With --image: the recomputation and the UKI's own digest. */
  recomputed?: { image: string; sha256: string; notes: string[]; comparison: ComparisonReport };
}

const verify: CommandSpec<VerifyResult> = {
  path: ['measurements', 'verify'],
  summary: 'check a measurements file\'s signature and, with --image, recompute its PCRs from the UKI',
  args: 'FILE',
  description: `
Exits 0 only when the signature over FILE's exact bytes verifies with the public key and,
with --image, every enforced PCR the image determines equals the recomputed value (a
warn-only PCR that differs is reported, not fatal; firmware PCRs are "not recomputed").
Errors: KEY_INVALID (not a P-256 public key, exit 2), SIGNATURE_INVALID (wrong key,
changed file or malformed signature, exit 1), MEASUREMENTS_INVALID (signed but invalid, exit 2).`,
  options: {
    key: { type: 'string', valueName: 'PUB.pem', description: 'ECDSA P-256 public key (PEM)', required: true },
    sig: { type: 'string', valueName: 'SIG', description: 'the signature file (default: FILE.sig)' },
    image: { type: 'string', valueName: 'UKI', description: 'recompute the PCRs from this UKI (with the file\'s boot assumptions) and compare' },
    ...SECURE_BOOT_OPTIONS,
  },
  async run({ values, positionals }) {
    const sb = await secureBootFromOptions(values);
    const keyPath = requireStr(values, 'key');
    const [path] = positionals;
    const sigPath = str(values, 'sig') ?? `${path}.sig`;
    const imagePath = str(values, 'image');
    const key = loadVerificationKey(await readInput(keyPath, 'public key'));
    const bytes = await readInput(path, 'measurements file');
    verifyBlob(bytes, await readInput(sigPath, 'signature'), key);
    const file = parseMeasurementFile(bytes);
    const result: VerifyResult = {
      ok: true,
      file: path,
      signatureFile: sigPath,
      key: keyFingerprint(key),
      image: file.image,
      bank: file.bank,
    };
    if (imagePath !== undefined) {
      const sha256 = await sha256OfFile(imagePath, 'image');
      let prediction = await precomputeImage(imagePath, file.bank, file.boot ?? {});
      if (sb) prediction = withPcr7(prediction, predictUkiPcr7(await readInput(imagePath, 'image'), sb, file.bank));
      const comparison = compareWithPrediction(file, prediction);
      const notes: string[] = [];
      if (file.image.ukiSha256 !== undefined && file.image.ukiSha256 !== sha256) {
        notes.push(`${imagePath} has sha256 ${sha256}, the file names ${file.image.ukiSha256} (the PCRs decide)`);
      }
      const stub = prediction.stub?.version;
      if (file.image.stubVersion !== undefined && stub !== undefined && stub !== file.image.stubVersion) {
        notes.push(`the UKI's stub is ${stub}, the file was made for ${file.image.stubVersion}`);
      }
      result.recomputed = { image: imagePath, sha256, notes, comparison };
      result.ok = comparison.ok;
    }
    return result;
  },
  render(r) {
    const lines = [
      `signature OK: ${r.signatureFile} signs ${r.file} (key ${r.key})`,
      `image: ${describeImage(r.image)}`,
    ];
    if (r.recomputed) {
      const { comparison, notes } = r.recomputed;
      for (const n of notes) lines.push(`note: ${n}`);
      lines.push('', comparisonText(comparison), '', comparison.ok ? 'recomputation OK' : 'recomputation FAILED: enforced PCRs differ');
    }
    return lines.join('\n');
  },
  exitCode: (r) => (r.ok ? 0 : 1),
};

const show: CommandSpec<MeasurementFile> = {
  path: ['measurements', 'show'],
  summary: 'print a measurements file as a table (checks it, does not check a signature)',
  args: 'FILE',
  async run({ positionals }) {
    return parseMeasurementFile(await readInput(positionals[0], 'measurements file'));
  },
  render(file) {
    const meta = Object.entries(file.metadata ?? {}).map(([k, v]) => `${k}: ${v}`);
    const boot = file.boot ? [`boot: pcrphase ${file.boot.pcrPhases?.join(',') || '(none)'}, secure boot ${file.boot.secureBoot ? 'on' : 'off'}`] : [];
    return [`image: ${describeImage(file.image)}`, `bank: ${file.bank}`, ...boot, ...meta, '', pcrTable(file)].join('\n');
  },
};

interface ConvertResult {
  from: string;
  to: string;
  sha256: string;
}

/** Reads FILE, converts it, writes --out: the shape of import and export. */
async function convertFile(
  values: OptionValues,
  input: string,
  [inWhat, outWhat]: [string, string],
  convert: (bytes: Buffer) => Buffer,
): Promise<ConvertResult> {
  const out = requireStr(values, 'out');
  const bytes = convert(await readInput(input, inWhat));
  await writeOutput(out, bytes, outWhat);
  return { from: input, to: out, sha256: sha256Hex(bytes) };
}

const importCmd: CommandSpec<ConvertResult> = {
  path: ['measurements', 'import'],
  summary: 'convert Constellation measurements (v2 JSON) into a sextant measurements file',
  args: 'FILE',
  description: `
Reads Constellation's {"version","ref","stream","list":[{"csp","attestationVariant",
"measurements":{"4":{"expected","warnOnly"}}}]} and writes one entry of it as a canonical
measurements file (warnOnly false = enforced; no event manifest). Which entry: the one
--csp/--variant name; with neither, the only entry, or else QEMU/qemu-vtpm if present.`,
  options: {
    format: { type: 'string', choices: FOREIGN_FORMATS, description: 'the input format', required: true },
    out: { type: 'string', valueName: 'OUT', description: 'where to write the measurements file', required: true },
    csp: { type: 'string', valueName: 'CSP', description: 'entry to import: cloud (AWS, Azure, GCP, OpenStack, QEMU)' },
    variant: { type: 'string', valueName: 'VARIANT', description: 'entry to import: attestation variant (e.g. qemu-vtpm)' },
    name: { type: 'string', valueName: 'NAME', description: 'image.name of the result (default: constellation)' },
  },
  run: ({ values, positionals }) =>
    convertFile(values, positionals[0], ['Constellation measurements', 'measurements file'], (input) =>
      importConstellationBytes(input, {
        csp: str(values, 'csp'),
        attestationVariant: str(values, 'variant'),
        imageName: str(values, 'name'),
      }),
    ),
  render: (r) => `wrote ${r.to} from ${r.from} (sha256 ${r.sha256})`,
};

const exportCmd: CommandSpec<ConvertResult> = {
  path: ['measurements', 'export'],
  summary: 'convert a sextant measurements file into Constellation measurements (v2 JSON)',
  args: 'FILE',
  description: `
Writes a one-entry Constellation v2 document (enforced = warnOnly false). The entry's
cloud/variant and the ref/stream come from the options, else from the file's metadata
(kept by an import), else QEMU/qemu-vtpm, "-", "stable". Event manifests are dropped.`,
  options: {
    format: { type: 'string', choices: FOREIGN_FORMATS, description: 'the output format', required: true },
    out: { type: 'string', valueName: 'OUT', description: 'where to write the Constellation document', required: true },
    csp: { type: 'string', valueName: 'CSP', description: 'the entry\'s cloud' },
    variant: { type: 'string', valueName: 'VARIANT', description: 'the entry\'s attestation variant' },
    ref: { type: 'string', valueName: 'REF', description: 'the document\'s ref' },
    stream: { type: 'string', valueName: 'STREAM', description: 'the document\'s stream' },
  },
  run: ({ values, positionals }) =>
    convertFile(values, positionals[0], ['measurements file', 'Constellation measurements'], (input) =>
      serializeConstellation(
        toConstellation(parseMeasurementFile(input), {
          csp: str(values, 'csp'),
          attestationVariant: str(values, 'variant'),
          ref: str(values, 'ref'),
          stream: str(values, 'stream'),
        }),
      ),
    ),
  render: (r) => `wrote ${r.to} from ${r.from} (sha256 ${r.sha256})`,
};

interface CreateResult {
  file: string;
  sha256: string;
  image: ImageIdentity;
  pcrs: Record<string, string>;
}

/** `created` keeps the file reproducible: from --created or SOURCE_DATE_EPOCH, else left out. */
function createdTime(values: OptionValues): string | undefined {
  const given = str(values, 'created');
  if (given !== undefined) return given;
  const epoch = process.env.SOURCE_DATE_EPOCH;
  if (epoch === undefined || !/^\d+$/.test(epoch)) return undefined;
  return new Date(Number(epoch) * 1000).toISOString().replace('.000Z', 'Z');
}

const create: CommandSpec<CreateResult> = {
  path: ['measurements', 'create'],
  summary: 'recompute a UKI\'s PCRs (4, 9, 11, 12, 13; 7 with --sb-keys/--ovmf-vars) and write them as a measurements file, with the event manifest',
  description: `
Writes canonical JSON: the same UKI and options always give the same bytes (metadata.created
comes from --created or SOURCE_DATE_EPOCH, else is left out). Every PCR is enforced unless
named in --warn-only. Sign the result with \`sextant measurements sign\`.`,
  options: {
    uki: { type: 'string', valueName: 'UKI', description: 'the UKI (EFI/BOOT/BOOTX64.EFI) to measure', required: true },
    out: { type: 'string', valueName: 'OUT', description: 'where to write the measurements file', required: true },
    name: { type: 'string', valueName: 'NAME', description: 'image.name', default: 'sextant-node' },
    'image-version': { type: 'string', valueName: 'VERSION', description: 'image.version', default: '0.0.0' },
    disk: { type: 'string', valueName: 'IMAGE', description: 'the disk image the UKI ships in (its sha256 goes into image.diskImageSha256)' },
    bank: { type: 'string', valueName: 'ALG', description: 'sha256 or sha384', default: 'sha256' },
    phases: { type: 'string', valueName: 'LIST', description: 'systemd-pcrphase strings the image extends into PCR 11, e.g. enter-initrd,leave-initrd,sysinit,ready' },
    'secure-boot': { type: 'boolean', description: 'Secure Boot is on (a 252 stub\'s kernel LoadImage is then not measured into PCR 4)' },
    'warn-only': { type: 'string', valueName: 'PCRS', description: 'PCRs whose mismatch only warns, e.g. 9,12' },
    builder: { type: 'string', valueName: 'TEXT', description: 'metadata.builder' },
    created: { type: 'string', valueName: 'TIME', description: 'metadata.created, RFC 3339 UTC' },
    ...SECURE_BOOT_OPTIONS,
  },
  async run({ values }) {
    const sb = await secureBootFromOptions(values);
    const ukiPath = requireStr(values, 'uki');
    const out = requireStr(values, 'out');
    const bank = str(values, 'bank');
    if (bank !== 'sha256' && bank !== 'sha384') throw new SextantError({ code: 'USAGE', message: `--bank must be sha256 or sha384, got ${bank}` });
    const phases = str(values, 'phases');
    const boot: BootAssumptions = {};
    if (phases !== undefined) boot.pcrPhases = phases.split(',').map((p) => p.trim()).filter((p) => p !== '');
    if (bool(values, 'secure-boot') || sb?.secureBoot) boot.secureBoot = true;
    let prediction = await precomputeImage(ukiPath, bank, boot);
    if (sb) prediction = withPcr7(prediction, predictUkiPcr7(await readInput(ukiPath, 'UKI'), sb, bank));
    const disk = str(values, 'disk');
    const image: ImageIdentity = {
      name: requireStr(values, 'name'),
      version: requireStr(values, 'image-version'),
      ukiSha256: await sha256OfFile(ukiPath, 'UKI'),
      ...(disk !== undefined && { diskImageSha256: await sha256OfFile(disk, 'disk image') }),
      ...(prediction.stub && { stubVersion: prediction.stub.version }),
    };
    const metadata: Record<string, string> = {};
    const created = createdTime(values);
    if (created !== undefined) metadata.created = created;
    const builder = str(values, 'builder');
    if (builder !== undefined) metadata.builder = builder;
    const warn = str(values, 'warn-only');
    const file = measurementFileFromPrediction(prediction, { image, bank, boot, metadata, warnOnly: warn ? parsePcrList(warn) : [] });
    const bytes = serializeMeasurementFile(file);
    await writeOutput(out, bytes, 'measurements file');
    return { file: out, sha256: sha256Hex(bytes), image, pcrs: Object.fromEntries(Object.entries(file.pcrs).map(([k, p]) => [k, p.expected])) };
  },
  render: (r) =>
    [`wrote ${r.file} (sha256 ${r.sha256}) for ${describeImage(r.image)}`, ...Object.entries(r.pcrs).map(([k, v]) => `  PCR ${k.padStart(2)}  ${v}`)].join('\n'),
};

export const measurementsCommands: CommandSpec<any>[] = [create, sign, verify, show, importCmd, exportCmd];
