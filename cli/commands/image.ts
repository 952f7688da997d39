import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SextantError } from '../../lib/errors.js';
import type { ComponentPin } from '../../image-builder/components.js';
import { ARTIFACTS, buildImage, type BuildResult } from '../../image-builder/build.js';
import { reproduceImage, type ReproduceResult } from '../../image-builder/reproduce.js';
import { diffReleases, type Change, type ReleaseDiff } from '../../image-builder/diff.js';
import { measureBuiltUki, signMeasurementsFile } from '../../image-builder/measure.js';
import { bool, str, type CommandSpec } from '../command.js';
import type { UkiSigning } from '../../image-builder/secure-boot.js';
import { CLOUD_FORMATS, parseCloudFormats } from '../../image-builder/cloud/export.js';
import { exportRelease, type ExportResult } from '../../image-builder/cloud/export-release.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

async function readComponents(file: string | undefined): Promise<ComponentPin[]> {
  if (!file) return [];
  let x: unknown;
  try {
    x = JSON.parse(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new SextantError({ code: 'CONFIG_INVALID', message: `${file}: cannot read components (JSON list of {name, sha256, path|url, installPath})`, cause });
  }
  if (!Array.isArray(x)) throw new SextantError({ code: 'CONFIG_INVALID', message: `${file}: expected a JSON list of components` });
  return x as ComponentPin[];
}

const commonOptions = {
  config: { type: 'string', valueName: 'DIR', description: 'the mkosi configuration', default: 'mkosi' },
  'sign-key': { type: 'string', valueName: 'KEY.pem', description: 'ECDSA P-256 key: also write measurements.json.sig' },
  components: { type: 'string', valueName: 'FILE', description: 'Kubernetes components pinned by SHA-256 (JSON list)' },
  debug: { type: 'boolean', description: 'debug variant: root shell on the serial console (marked in manifest and measurements)' },
  'image-version': { type: 'string', valueName: 'VERSION', description: 'image version recorded in the manifest', default: '0.1.0' },
  'sb-key': { type: 'string', valueName: 'KEY.pem', description: 'Secure Boot db signing key (RSA): sign the UKI in the build, reproducibly' },
  'sb-cert': { type: 'string', valueName: 'CERT', description: 'its certificate (PEM or DER; named in manifest.json)' },
  'sb-keys': { type: 'string', valueName: 'DIR', description: 'Secure Boot key folder (PK/, KEK/, db/, dbx/): measurements.json enforces PCR 7' },
} as const;

function ukiSigning(values: Record<string, unknown>): UkiSigning | undefined {
  const key = str(values as never, 'sb-key');
  const cert = str(values as never, 'sb-cert');
  if ((key === undefined) !== (cert === undefined)) throw new SextantError({ code: 'USAGE', message: '--sb-key and --sb-cert go together' });
  return key && cert ? { kind: 'key', key: path.resolve(key), cert: path.resolve(cert) } : undefined;
}

function buildOpts(values: Record<string, unknown>, log: (l: string) => void) {
  return {
    repoRoot: REPO_ROOT,
    configDir: path.resolve(str(values as never, 'config') ?? 'mkosi'),
    signKey: str(values as never, 'sign-key'),
    debug: bool(values as never, 'debug'),
    imageVersion: str(values as never, 'image-version'),
    ukiSigning: ukiSigning(values),
    sbKeysDir: str(values as never, 'sb-keys'),
    measure: measureBuiltUki,
    sign: signMeasurementsFile,
    onStage: (s: string) => log(`[${new Date().toISOString().slice(11, 19)}] ${s}`),
    log,
  };
}

const build: CommandSpec<BuildResult> = {
  path: ['image', 'build'],
  summary: 'build the node image with mkosi and write image, UKI, measurements, lock, manifest, SHA256SUMS, bundle',
  description: `
Runs mkosi 24 (scripts/fetch-mkosi.sh fetches it) with a Debian trixie tools tree built on
first use into .cache/tools. Progress goes to stderr stage by stage. Outputs in --out:
${Object.values(ARTIFACTS).join(', ')} (+ measurements.json.sig with --sign-key).
--lock installs exactly the packages of an earlier build's package-lock.json and fails,
naming the packages, if anything differs. Kubernetes components cannot be downloaded here:
without --components the image is built without them and says so in manifest.json.
--sb-key/--sb-cert sign the UKI (osslsigncode, the configuration's SourceDateEpoch as the
signing time: the same inputs give the same signed bytes) and put it onto the disk's ESP;
manifest.json names the certificate (subject, SHA-256 fingerprint). Without them the UKI is
unsigned and the manifest says so. --sb-keys DIR adds PCR 7, enforced, with its events.
--format azure,gcp,aws also writes sextant-node-azure.vhd (fixed VHD), sextant-node-gcp.tar.gz
(disk.raw in GNU oldgnu sparse tar) and sextant-node-aws.raw, with measurements-<cloud>.json
(PCRs 4 and 7 warn-only there: docs/image-build.md says why), all in SHA256SUMS.`,
  options: {
    ...commonOptions,
    out: { type: 'string', valueName: 'DIR', description: 'output folder', default: 'out' },
    lock: { type: 'string', valueName: 'FILE', description: 'package lock of an earlier build to rebuild from' },
    format: { type: 'string', valueName: 'LIST', description: `cloud disk images to write too, each with a measurements file: ${CLOUD_FORMATS.join(',')}` },
  },
  async run({ values, log, signal }) {
    return buildImage({
      ...buildOpts(values, log),
      outDir: path.resolve(str(values, 'out') ?? 'out'),
      lockFile: str(values, 'lock'),
      cloudFormats: str(values, 'format') === undefined ? undefined : parseCloudFormats(str(values, 'format')!),
      components: await readComponents(str(values, 'components')),
      signal,
    });
  },
  render: (r) =>
    [
      `built in ${r.seconds.toFixed(0)} s into ${r.outDir}`,
      ...r.artifacts.map((a) => `  ${a.sha256}  ${a.name}`),
      r.secureBoot.signer ? `UKI signed by ${r.secureBoot.signer.subject} (certificate sha256 ${r.secureBoot.signer.sha256Fingerprint})` : 'UKI not signed',
      ...r.notes.map((n) => `note: ${n}`),
    ].join('\n'),
};

const reproduce: CommandSpec<ReproduceResult> = {
  path: ['image', 'reproduce'],
  args: 'DIR',
  summary: "rebuild a release folder from its package lock and compare every artifact's digest",
  description: `
A signed release is rebuilt with --sb-key/--sb-cert when given; without them the release's
own UKI signature is put onto the rebuilt UKI (it fits only when the rebuild is the same UKI),
so anyone can reproduce a signed release. A release with PCR 7 needs its --sb-keys folder.`,
  options: { ...commonOptions, keep: { type: 'string', valueName: 'DIR', description: 'keep the rebuild in DIR' } },
  async run({ values, positionals, log, signal }) {
    return reproduceImage(path.resolve(positionals[0]), {
      ...buildOpts(values, log),
      components: await readComponents(str(values, 'components')),
      keepDir: str(values, 'keep'),
      signal,
    });
  },
  render: (r) =>
    [
      r.reproducible ? 'reproducible: every artifact is bit-identical' : 'NOT reproducible:',
      ...r.artifacts.map((a) => `  ${a.same ? 'same   ' : 'DIFFERS'}  ${a.name}${a.same ? '' : `  (${a.expected.slice(0, 16)} vs ${a.actual?.slice(0, 16) ?? 'missing'})`}`),
      ...(r.cause ? ['why:', ...renderDiff(r.cause).map((l) => `  ${l}`)] : []),
      ...r.artifacts.filter((a) => a.diffoscope).map((a) => `--- diffoscope ${a.name}\n${a.diffoscope}`),
    ].join('\n'),
  exitCode: (r) => (r.reproducible ? 0 : 1),
};

const short = (v: string | undefined): string => (v === undefined ? '(absent)' : /^[0-9a-f]{64}$/.test(v) ? v.slice(0, 16) : v);
const changeLines = (title: string, changes: Change[]): string[] =>
  changes.length === 0 ? [] : [`${title}:`, ...changes.map((c) => `  ${c.name}: ${short(c.from)} -> ${short(c.to)}`)];

function renderDiff(r: ReleaseDiff): string[] {
  return [
    ...changeLines('packages', r.packages),
    ...changeLines('components', r.components),
    ...changeLines('agent (built from this checkout)', r.agent),
    ...changeLines('tools', r.tools),
    ...changeLines('Secure Boot', r.secureBoot),
    ...changeLines('artifacts', r.artifacts),
    ...(r.pcrs.length === 0 ? [] : ['PCRs:']),
    ...r.pcrs.flatMap((p) => [`  PCR ${p.pcr}${p.secureBoot?.length ? ` (Secure Boot policy: ${p.secureBoot.join(', ')})` : ''}: ${short(p.from)} -> ${short(p.to)}`, ...p.events.map((e) => `    ${e.kind} ${e.component}`)]),
  ];
}

const diff: CommandSpec<ReleaseDiff> = {
  path: ['image', 'diff'],
  args: 'OLD NEW',
  summary: 'name what differs between two release folders (or measurements files): packages, components, tools, Secure Boot, artifacts, PCRs and the measured parts',
  description: `
Reads manifest.json, measurements.json and SHA256SUMS of both folders (nothing is rebuilt);
OLD or NEW may also be a bare measurements file (then only its PCRs are compared), e.g. one
made with \`measurements create --sb-keys NEW-KEYS/\` before a db/dbx rollout.
Each PCR that moved is listed with the measured components that differ (e.g. PCR 11
.cmdline: a changed root file system changes the dm-verity roothash on the command line;
PCR 7 names the Secure Boot variable, db, dbx, KEK, PK or SecureBoot, or the authority).
Exit 0 when the releases are the same, 1 when they differ.`,
  async run({ positionals }) {
    return diffReleases(path.resolve(positionals[0]), path.resolve(positionals[1]));
  },
  render: (r) => (r.identical ? 'identical: same inputs, artifacts and measurements' : renderDiff(r).join('\n')),
  exitCode: (r) => (r.identical ? 0 : 1),
};

const exportCmd: CommandSpec<ExportResult> = {
  path: ['image', 'export'],
  args: 'DIR',
  summary: 'write cloud disk images (azure VHD, gcp tar.gz, aws raw) and their measurements files from a release folder',
  description: `
The same bytes \`image build --format\` writes: the release's disk (checked against its
SHA256SUMS) and its SourceDateEpoch (manifest.json; --time for older releases). Writes
into --out, with a SHA256SUMS of what it wrote; the release folder is not changed.`,
  options: {
    format: { type: 'string', valueName: 'LIST', description: `one or more of ${CLOUD_FORMATS.join(',')}`, required: true },
    out: { type: 'string', valueName: 'DIR', description: 'output folder', required: true },
    'sign-key': commonOptions['sign-key'],
    time: { type: 'string', valueName: 'SECONDS', description: 'SourceDateEpoch, for releases whose manifest does not record it' },
  },
  async run({ values, positionals, log }) {
    const time = str(values, 'time');
    if (time !== undefined && !/^\d+$/.test(time)) throw new SextantError({ code: 'USAGE', message: `--time takes unix seconds, got ${time}` });
    return exportRelease(path.resolve(positionals[0]), path.resolve(str(values, 'out')!), parseCloudFormats(str(values, 'format')!), {
      time: time === undefined ? undefined : Number(time),
      signKey: str(values, 'sign-key'),
      sign: signMeasurementsFile,
      log,
    });
  },
  render: (r) => [`wrote into ${r.outDir}:`, ...r.artifacts.map((a) => `  ${a.sha256}  ${a.name}`)].join('\n'),
};

export const imageCommands: CommandSpec<any>[] = [build, reproduce, diff, exportCmd];
