/**
 * Cloud disk formats (image-builder/cloud/) from a release folder: Azure's fixed VHD, GCP's
 * tar.gz holding disk.raw, AWS's raw disk, each with its measurements file. The disk is a
 * real GPT disk with data and holes and an odd size; the measurements come from a real UKI
 * (Debian 12's stub and kernel). Oracles: qemu-img (reads the VHD as vpc, converts it back,
 * and writes its own fixed VHD to compare footers with), GNU tar and gzip.
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { sha256File } from '../../lib/hash-file.js';
import { ARTIFACTS } from '../../image-builder/build.js';
import { CLOUD_ARTIFACTS, exportCloudImages, type CloudFormat } from '../../image-builder/cloud/export.js';
import { vhdChecksum } from '../../image-builder/cloud/vhd.js';
import { measureBuiltUki } from '../../image-builder/measure.js';
import { parseMeasurementFile } from '../../measurements/format/index.js';
import { sextant } from '../helpers/cli.js';
import { buildUki, HOST_STUB, hostKernel } from '../helpers/uki.js';

const MIB = 2 ** 20;
const TIME = 1764115200; // mkosi.conf's SourceDateEpoch
let work: string;
let release: string;
let diskSize: number;

/** SHA-256 of the first `size` bytes of a file followed by zeros up to `total`. */
async function paddedSha256(file: string, size: number, total: number): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { end: size - 1 })) h.update(chunk as Buffer);
  const zeros = Buffer.alloc(MIB);
  for (let left = total - size; left > 0; left -= Math.min(left, MIB)) h.update(zeros.subarray(0, Math.min(left, MIB)));
  return h.digest('hex');
}

async function prefixSha256(file: string, size: number): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { end: size - 1 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function zerosFrom(file: string, start: number): Promise<boolean> {
  const zero = Buffer.alloc(8 * MIB);
  for await (const chunk of createReadStream(file, { start, highWaterMark: 8 * MIB })) {
    if (!zero.subarray(0, (chunk as Buffer).length).equals(chunk as Buffer)) return false;
  }
  return true;
}

test.before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'sextant-cloud-'));
  release = path.join(work, 'release');
  await mkdir(release);
  // A GPT disk of 6 MiB + 37 sectors (not whole MiB), data at a few places, holes between.
  const disk = path.join(release, ARTIFACTS.disk);
  diskSize = 6 * MIB + 37 * 512;
  await run('truncate', ['-s', String(diskSize), disk]);
  await run('sfdisk', ['-q', disk], { input: 'label: gpt\nstart=2048, size=8192, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp\n' });
  const fh = await open(disk, 'r+');
  for (const at of [1 * MIB, 1 * MIB + 4096, 3 * MIB + 123 * 512, 5 * MIB]) await fh.write(randomBytes(64 * 1024), 0, 64 * 1024, at);
  await fh.close();
  const uki = path.join(release, ARTIFACTS.uki);
  await buildUki({ stub: HOST_STUB, linux: { file: await hostKernel() }, initrd: Buffer.from('initrd\n'), cmdline: Buffer.from('ro'), osrel: Buffer.from('ID=debian\n') }, uki);
  await writeFile(path.join(release, ARTIFACTS.measurements), await measureBuiltUki(uki, { name: 'sextant-node', version: '0.1.0', debug: false }));
  await writeFile(path.join(release, ARTIFACTS.manifest), JSON.stringify({ packages: [], components: [], tools: {}, sourceDateEpoch: TIME }));
  const sums = [];
  for (const n of [ARTIFACTS.disk, ARTIFACTS.manifest, ARTIFACTS.measurements, ARTIFACTS.uki].sort()) sums.push(`${await sha256File(path.join(release, n))}  ${n}\n`);
  await writeFile(path.join(release, ARTIFACTS.sums), sums.join(''));
});
test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function exportTo(name: string, formats: CloudFormat[], disk = path.join(release, ARTIFACTS.disk)): Promise<string> {
  const out = path.join(work, name);
  await mkdir(out);
  await exportCloudImages({ disk, measurements: await readFile(path.join(release, ARTIFACTS.measurements)), outDir: out, formats, time: TIME, diskSha256: await sha256File(disk) });
  return out;
}

/** One export of every format, shared by the tests that read it (GCP's 1 GiB disk.raw costs seconds to scan). */
let all: Promise<string> | undefined;
const exportAll = (): Promise<string> => (all ??= exportTo('a', ['azure', 'gcp', 'aws']));

test('the same disk gives the same bytes in every format, whatever its holes on the file system', async (t) => {
  const a = await exportAll();
  // The same bytes with no holes at all (cp --sparse=never): GCP's tar must not follow the file system's holes.
  const dense = path.join(work, 'dense.raw');
  await run('cp', ['--sparse=never', path.join(release, ARTIFACTS.disk), dense]);
  const b = await exportTo('b', ['azure', 'gcp', 'aws'], dense);
  for (const name of [...Object.values(CLOUD_ARTIFACTS), 'measurements-azure.json', 'measurements-gcp.json', 'measurements-aws.json']) {
    t.is(await sha256File(path.join(a, name)), await sha256File(path.join(b, name)), name);
  }
});

test('Azure: a fixed VHD of whole MiB that qemu-img reads as vpc and converts back to the disk; its footer is qemu-img\'s but for time, id and checksum', async (t) => {
  const out = await exportAll();
  const vhd = path.join(out, CLOUD_ARTIFACTS.azure);
  const rounded = Math.ceil(diskSize / MIB) * MIB;
  t.is((await stat(vhd)).size, rounded + 512, 'disk, zeros to the next MiB, a 512-byte footer');
  // qemu-img probes only offset 0 for "conectix" (a dynamic VHD's footer copy), so a fixed VHD is
  // opened as vpc explicitly; it refuses a file whose last sector is not a VHD footer.
  const info = JSON.parse((await run('qemu-img', ['info', '-f', 'vpc', '--output=json', vhd])).stdout) as { format: string; 'virtual-size': number };
  t.is(info.format, 'vpc');
  t.is(info['virtual-size'], rounded);
  t.is((await run('qemu-img', ['info', '-f', 'vpc', path.join(release, ARTIFACTS.disk)], { okExitCodes: [1] })).exitCode, 1, 'the raw disk is no VHD to qemu-img');
  const back = path.join(work, 'back.raw');
  await run('qemu-img', ['convert', '-f', 'vpc', '-O', 'raw', vhd, back]);
  t.is(await sha256File(back), await paddedSha256(path.join(release, ARTIFACTS.disk), diskSize, rounded), 'converted back: the disk, then zeros');

  // qemu-img's own fixed VHD of the same padded disk (force_size: size from the footer).
  const theirs = path.join(work, 'qemu.vhd');
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=fixed,force_size=on', back, theirs]);
  const q = (await readFile(theirs)).subarray(-512);
  const ours = (await readFile(vhd)).subarray(-512);
  const mask = (f: Buffer): Buffer => Buffer.concat([f.subarray(0, 24), f.subarray(28, 64), f.subarray(84)]);
  t.true(mask(ours).equals(mask(q)), 'every footer field but timestamp, checksum and unique id equals qemu-img\'s');
  t.is(vhdChecksum(q), q.readUInt32BE(64), 'the checksum rule reproduces qemu-img\'s checksum');
  t.is(ours.readUInt32BE(64), vhdChecksum(ours));
  t.is(ours.readUInt32BE(24), TIME - 946684800, 'time stamp: SourceDateEpoch in seconds since 2000');
});

test('GCP: gzip-valid tar.gz of one oldgnu sparse member disk.raw (whole GiB, root, fixed mtime) that extracts to the disk', async (t) => {
  const out = await exportAll();
  const tgz = path.join(out, CLOUD_ARTIFACTS.gcp);
  await run('gzip', ['-t', tgz]);
  const list = (await run('tar', ['-tvf', tgz, '--numeric-owner', '--full-time'], { env: { TZ: 'UTC' } })).stdout.trim().split('\n');
  t.is(list.length, 1);
  t.regex(list[0], /^-rw-r--r-- 0\/0 +1073741824 2025-11-26 00:00:00 disk\.raw$/);
  const header = (await run('sh', ['-c', `gzip -dc '${tgz}' | head -c 512`], { binary: true })).stdoutBytes;
  t.is(header.subarray(257, 265).toString('latin1'), 'ustar  \0', 'GNU oldgnu magic');
  t.is(String.fromCharCode(header[156]), 'S', 'a GNU sparse member');
  t.true((await stat(tgz)).size < 2 * MIB, 'the GiB of zeros is not stored');
  const m = parseMeasurementFile(await readFile(path.join(out, 'measurements-gcp.json')), 'gcp');
  t.is(m.metadata?.variant, 'gcp');
  t.false(m.pcrs['4'].enforced);
  t.true(m.pcrs['11'].enforced);
  const x = path.join(work, 'gcp-x');
  await mkdir(x);
  await run('tar', ['-xzf', tgz, '-C', x]);
  const extracted = path.join(x, 'disk.raw');
  t.is((await stat(extracted)).size, 2 ** 30);
  t.is(await prefixSha256(extracted, diskSize), await sha256File(path.join(release, ARTIFACTS.disk)), 'disk.raw starts with the disk');
  t.true(await zerosFrom(extracted, diskSize), 'and is zeros after it');
});

test('AWS: the raw disk as is; each cloud\'s measurements warn on PCR 4 and 7 and enforce the UKI\'s own PCRs', async (t) => {
  const out = await exportAll();
  t.is(await sha256File(path.join(out, CLOUD_ARTIFACTS.aws)), await sha256File(path.join(release, ARTIFACTS.disk)));
  const base = parseMeasurementFile(await readFile(path.join(release, ARTIFACTS.measurements)), 'base');
  for (const cloud of ['azure', 'gcp', 'aws']) {
    const m = parseMeasurementFile(await readFile(path.join(out, `measurements-${cloud}.json`)), cloud);
    t.is(m.metadata?.variant, cloud);
    t.false(m.pcrs['4'].enforced, `${cloud}: PCR 4 warn-only`);
    for (const pcr of ['9', '11', '12', '13']) t.true(m.pcrs[pcr].enforced, `${cloud}: PCR ${pcr} enforced`);
    for (const pcr of Object.keys(base.pcrs)) t.is(m.pcrs[pcr].expected, base.pcrs[pcr].expected, `${cloud}: PCR ${pcr} value as the release's`);
    t.regex(m.metadata?.['warn-only'] ?? '', /^PCR 4: .*no reference boot/);
  }
});

test('sextant image export: SHA256SUMS of what it wrote; a disk that is not the release\'s is IMAGE_MISMATCH; an unknown format is USAGE', async (t) => {
  const out = path.join(work, 'cli');
  const r = await sextant(['image', 'export', release, '--format', 'aws,azure', '--out', out, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const sums = (await readFile(path.join(out, 'SHA256SUMS'), 'utf8')).trim().split('\n');
  t.deepEqual(sums.map((l) => l.split('  ')[1]), ['measurements-aws.json', 'measurements-azure.json', CLOUD_ARTIFACTS.aws, CLOUD_ARTIFACTS.azure]);
  for (const l of sums) t.is(await sha256File(path.join(out, l.split('  ')[1])), l.split('  ')[0]);

  const bad = await sextant(['image', 'export', release, '--format', 'openstack', '--out', out]);
  t.is(bad.exitCode, 2);
  t.regex(bad.stderr, /USAGE.*openstack/);
  const copy = path.join(work, 'release-changed');
  await run('cp', ['-r', '--sparse=always', release, copy]);
  const fh = await open(path.join(copy, ARTIFACTS.disk), 'r+');
  await fh.write(Buffer.from([0x55]), 0, 1, 5 * MIB + 100);
  await fh.close();
  const changed = await sextant(['image', 'export', copy, '--format', 'aws', '--out', path.join(work, 'cli2')]);
  t.not(changed.exitCode, 0);
  t.regex(changed.stderr, /IMAGE_MISMATCH/);
});
