/**
 * `sextant measure uki` throughput on a >= 64 MiB UKI, against node:crypto hashing the same
 * file once (the floor any precompute pays: every byte must be hashed at least once) and
 * against systemd-measure calculate (PCR 11 only) where it is installed.
 *
 *   node dist/bench/measure-uki.js        (or: npm run bench measure-uki)
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { buildUki } from '../measurements/uki/build.js';
import { precomputeUki, precomputeUkiFile } from '../measurements/uki/precompute.js';
import { report, timeItAsync, type Figure } from './harness.js';

const STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';
const SYSTEMD_MEASURE = '/usr/lib/systemd/systemd-measure';
const INITRD_MIB = Number(process.env.BENCH_INITRD_MIB ?? 60);

async function main(): Promise<void> {
  const kernel = (await readdir('/boot')).filter((f) => f.startsWith('vmlinuz-')).sort().pop();
  if (!kernel || !existsSync(STUB)) throw new Error('needs /boot/vmlinuz-* and systemd-boot-efi (scripts/system-packages.txt)');
  const work = await mkdtemp(path.join(tmpdir(), 'sextant-bench-uki-'));
  try {
    const f = (n: string): string => path.join(work, n);
    await writeFile(f('initrd'), randomBytes(INITRD_MIB << 20)); // incompressible padding, as a big initrd
    await writeFile(f('cmdline'), 'console=ttyS0 quiet');
    await writeFile(f('osrel'), 'ID=debian\nVERSION_ID=12\n');
    const uki = f('uki.efi');
    const linux = path.join('/boot', kernel);
    await buildUki({ stub: STUB, linux: { file: linux }, initrd: { file: f('initrd') }, cmdline: { file: f('cmdline') }, osrel: { file: f('osrel') } }, uki);
    const size = (await stat(uki)).size;
    const mib = size / (1 << 20);

    const opts = { minRuns: 7 };
    const baseline = await timeItAsync(async () => createHash('sha256').update(await readFile(uki)).digest(), opts);
    const file = await timeItAsync(() => precomputeUkiFile(uki), opts);
    const inMemoryBytes = await readFile(uki);
    const memBaseline = await timeItAsync(async () => createHash('sha256').update(inMemoryBytes).digest(), opts);
    const inMemory = await timeItAsync(async () => precomputeUki(inMemoryBytes), opts);

    const figures: Figure[] = [
      { name: 'UKI size', value: mib, unit: 'MiB' },
      { name: 'node:crypto sha256, read + hash once', value: mib / baseline, unit: 'MiB/s' },
      { name: 'measure uki (file, two threads)', value: mib / file, unit: 'MiB/s' },
      { name: 'ratio measure uki / hash once', value: baseline / file, unit: 'x (goal >= 0.9)' },
      { name: 'in memory: sha256 once', value: mib / memBaseline, unit: 'MiB/s' },
      { name: 'in memory: precomputeUki (one thread)', value: mib / inMemory, unit: 'MiB/s' },
      { name: 'ratio in memory, one thread', value: memBaseline / inMemory, unit: 'x' },
    ];
    if (existsSync(SYSTEMD_MEASURE)) {
      const args = ['calculate', `--linux=${linux}`, `--initrd=${f('initrd')}`, `--cmdline=${f('cmdline')}`, `--osrel=${f('osrel')}`, '--bank=sha256', '--phase=enter-initrd'];
      const measure = await timeItAsync(() => execa(SYSTEMD_MEASURE, args), { minRuns: 5 });
      figures.push(
        { name: 'systemd-measure calculate (PCR 11 only)', value: mib / measure, unit: 'MiB/s' },
        { name: 'ratio measure uki (PCRs 4, 9, 11) / systemd-measure', value: measure / file, unit: 'x' },
      );
    } else {
      figures.push({ name: 'systemd-measure calculate: not installed', value: 0, unit: '' });
    }
    report('measure-uki', figures);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
