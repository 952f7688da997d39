/**
 * `sextant measure uki` throughput on a >= 64 MiB UKI, side by side in one run with
 *  - node:crypto reading and hashing the file once (the floor any precompute pays: every byte
 *    hashed at least once; sextant hashes about twice as much, PCR 4's Authenticode digest of
 *    the whole file and PCR 11's section digests),
 *  - systemd-measure calculate (PCR 11 only; a process, as `sextant measure uki` is one too).
 * Candidates run interleaved, round by round, so a change in machine load hits all alike; the
 * load average is printed with the figures, and each candidate's CPU time per run (on a loaded
 * host the wall time measures this process's share of the CPU more than the work). UKIs: the host's 252 stub (which also makes PCR 4
 * hash the kernel's Authenticode digest) and, when it can be fetched, sid's 262 stub.
 *
 *   node dist/bench/measure-uki.js        (or: npm run bench measure-uki)
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { execa } from 'execa';
import { buildUki } from '../measurements/uki/build.js';
import { precomputeUki, precomputeUkiFile } from '../measurements/uki/precompute.js';
import { median, report, type Figure } from './harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HOST_STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';
const SYSTEMD_MEASURE = '/usr/lib/systemd/systemd-measure';
const INITRD_MIB = Number(process.env.BENCH_INITRD_MIB ?? 60);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);

async function sidStub(): Promise<string | undefined> {
  try {
    const { stdout } = await execa('sh', [path.join(ROOT, 'scripts/fetch-debian-package.sh'), 'sid', 'systemd-boot-efi'], { timeout: 300_000 });
    const stub = path.join(stdout.trim().split('\n').pop()!, 'usr/lib/systemd/boot/efi/linuxx64.efi.stub');
    return existsSync(stub) ? stub : undefined;
  } catch {
    return undefined;
  }
}

v8.setFlagsFromString('--expose-gc');
/** A full garbage collection, outside the timed runs. */
const collectGarbage = vm.runInNewContext('gc') as () => void;

/** CPU seconds of the processes this one waited for (Linux /proc/self/stat cutime + cstime, 10 ms ticks). */
function childrenCpu(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
  return (Number(f[13]) + Number(f[14])) / 100;
}

/**
 * Runs every candidate once per round, in turn: the median wall seconds of each, and its mean CPU
 * seconds per run (this process's threads and the child processes it waited for). On a loaded
 * host the wall time is this process's share of the CPU, so CPU seconds say what a run costs.
 */
async function interleaved(candidates: Record<string, () => Promise<unknown>>): Promise<{ wall: Record<string, number>; cpu: Record<string, number> }> {
  const times: Record<string, number[]> = {};
  const cpu: Record<string, number> = {};
  const all = Object.entries(candidates);
  for (let r = 0; r < ROUNDS; r++) {
    // each round starts one candidate later (neighbours stay the same). On the loaded dev host
    // `file` and `oneThread`, the same code there, still differ by up to 1.5x in wall time: read
    // the wall ratios with that spread, the CPU per run is the stable figure
    for (const [name, fn] of all.map((_, i) => all[(i + r) % all.length])) {
      collectGarbage(); // the previous candidate's garbage (hashOnce's 68 MiB buffer) is not charged to this one
      const c0 = process.cpuUsage();
      const k0 = childrenCpu();
      const t0 = process.hrtime.bigint();
      await fn();
      (times[name] ??= []).push(Number(process.hrtime.bigint() - t0) / 1e9);
      const c = process.cpuUsage(c0);
      cpu[name] = (cpu[name] ?? 0) + ((c.user + c.system) / 1e6 + childrenCpu() - k0) / ROUNDS;
    }
  }
  return { wall: Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)])), cpu };
}

async function benchOne(label: string, stub: string, linux: string, work: string): Promise<Figure[]> {
  const f = (n: string): string => path.join(work, n);
  const uki = f(`uki-${label}.efi`);
  await buildUki({ stub, linux: { file: linux }, initrd: { file: f('initrd') }, cmdline: { file: f('cmdline') }, osrel: { file: f('osrel') } }, uki);
  const mib = (await readFile(uki)).length / (1 << 20);
  const inMemoryBytes = await readFile(uki);
  const measureArgs = ['calculate', `--linux=${linux}`, `--initrd=${f('initrd')}`, `--cmdline=${f('cmdline')}`, `--osrel=${f('osrel')}`, '--bank=sha256', '--phase=enter-initrd'];
  const candidates: Record<string, () => Promise<unknown>> = {
    hashOnce: async () => createHash('sha256').update(await readFile(uki)).digest(),
    file: () => precomputeUkiFile(uki),
    oneThread: () => precomputeUkiFile(uki, { threads: 1 }),
    twoThreads: () => precomputeUkiFile(uki, { threads: 2 }),
    cli: () => execa(process.execPath, [path.join(ROOT, 'bin/sextant.js'), 'measure', 'uki', uki, '--json']),
    memHashOnce: async () => createHash('sha256').update(inMemoryBytes).digest(),
    memPrecompute: async () => precomputeUki(inMemoryBytes),
  };
  const haveMeasure = existsSync(SYSTEMD_MEASURE);
  if (haveMeasure) {
    candidates.systemdMeasure = () => execa(SYSTEMD_MEASURE, measureArgs);
    // its default: every bank (SHA-1, -256, -384, -512) and four phases; not like with like
    candidates.systemdMeasureDefault = () => execa(SYSTEMD_MEASURE, measureArgs.filter((a) => !a.startsWith('--bank=') && !a.startsWith('--phase=')));
  }
  const load0 = os.loadavg()[0];
  const { wall: t, cpu } = await interleaved(candidates);
  const load1 = os.loadavg()[0];
  const ms = (s: number): number => s * 1000;
  const figures: Figure[] = [
    { name: `[${label}] UKI size`, value: mib, unit: 'MiB' },
    { name: `[${label}] load average (1 min) before / after`, value: load0, unit: `/ ${load1.toFixed(2)} on ${os.availableParallelism()} cores` },
    { name: `[${label}] node:crypto sha256, read + hash once`, value: mib / t.hashOnce, unit: 'MiB/s' },
    { name: `[${label}] measure uki (file; threads chosen by load)`, value: mib / t.file, unit: 'MiB/s' },
    { name: `[${label}] ratio measure uki / hash once`, value: t.hashOnce / t.file, unit: 'x (goal >= 0.9)' },
    { name: `[${label}]   ... one thread forced`, value: t.hashOnce / t.oneThread, unit: 'x' },
    { name: `[${label}]   ... two threads forced`, value: t.hashOnce / t.twoThreads, unit: 'x' },
    { name: `[${label}] in memory: ratio precomputeUki / sha256 once`, value: t.memHashOnce / t.memPrecompute, unit: 'x' },
    { name: `[${label}] CPU per run: read + hash once`, value: ms(cpu.hashOnce), unit: 'ms' },
    { name: `[${label}] CPU per run: measure uki (file), one / two threads`, value: ms(cpu.oneThread), unit: `/ ${ms(cpu.twoThreads).toFixed(1)} ms` },
    { name: `[${label}] CPU ratio measure uki (one thread) / hash once`, value: cpu.hashOnce / cpu.oneThread, unit: 'x' },
  ];
  if (haveMeasure) {
    figures.push(
      { name: `[${label}] systemd-measure calculate (PCR 11 only)`, value: mib / t.systemdMeasure, unit: 'MiB/s' },
      { name: `[${label}] ratio measure uki (PCRs 4, 9, 11) / systemd-measure`, value: t.systemdMeasure / t.file, unit: 'x (goal >= 1.0)' },
      { name: `[${label}]   ... one thread forced`, value: t.systemdMeasure / t.oneThread, unit: 'x' },
      { name: `[${label}]   ... two threads forced`, value: t.systemdMeasure / t.twoThreads, unit: 'x' },
      { name: `[${label}] ratio CLI process \`sextant measure uki\` / systemd-measure`, value: t.systemdMeasure / t.cli, unit: 'x' },
      { name: `[${label}] CPU per run: systemd-measure, CLI process`, value: ms(cpu.systemdMeasure), unit: `/ ${ms(cpu.cli).toFixed(1)} ms` },
      { name: `[${label}] CPU ratio systemd-measure / measure uki (one thread)`, value: cpu.systemdMeasure / cpu.oneThread, unit: 'x' },
      { name: `[${label}] not like with like: systemd-measure's default (4 banks, 4 phases) / measure uki`, value: t.systemdMeasureDefault / t.file, unit: 'x' },
    );
  } else {
    figures.push({ name: 'systemd-measure calculate: not installed', value: 0, unit: '' });
  }
  return figures;
}

async function main(): Promise<void> {
  const kernel = (await readdir('/boot')).filter((f) => f.startsWith('vmlinuz-')).sort().pop();
  if (!kernel || !existsSync(HOST_STUB)) throw new Error('needs /boot/vmlinuz-* and systemd-boot-efi (scripts/system-packages.txt)');
  const work = await mkdtemp(path.join(tmpdir(), 'sextant-bench-uki-'));
  try {
    const f = (n: string): string => path.join(work, n);
    await writeFile(f('initrd'), randomBytes(INITRD_MIB << 20)); // incompressible padding, as a big initrd
    await writeFile(f('cmdline'), 'console=ttyS0 quiet');
    await writeFile(f('osrel'), 'ID=debian\nVERSION_ID=12\n');
    const linux = path.join('/boot', kernel);
    const figures = await benchOne('stub 252', HOST_STUB, linux, work);
    const sid = await sidStub();
    if (sid) figures.push(...(await benchOne('stub 262', sid, linux, work)));
    report('measure-uki', figures);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
