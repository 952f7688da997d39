import test from 'ava';
import fc from 'fast-check';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { isSextantError } from '../../lib/errors.js';
import { extendAll } from '../../measurements/pcr/extend.js';
import { cpioLiteral } from '../../measurements/uki/cpio.js';
import { PARALLEL_THRESHOLD } from '../../measurements/uki/digest-jobs.js';
import { precomputeUki, precomputeUkiFile } from '../../measurements/uki/precompute.js';
import { parseUki } from '../../measurements/uki/sections.js';
import { sextant } from '../helpers/cli.js';
import { pesignHash } from '../helpers/oracles.js';
import { buildUki, HOST_STUB, hostKernel, SYSTEMD_MEASURE, trixieStub } from '../helpers/uki.js';

const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

let work: string;
let kernel: string;
const INITRD = Buffer.from('an initrd that is not a multiple of four bytes long\n!');
const CMDLINE = 'console=ttyS0  quiet\n';
const OSREL = 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="sextant test"\n';
let uki252: string;
let uki257: string;

test.before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'sextant-uki-test-'));
  kernel = await hostKernel();
  const parts = { linux: { file: kernel }, initrd: INITRD, cmdline: Buffer.from(CMDLINE), osrel: Buffer.from(OSREL) };
  uki252 = path.join(work, 'uki252.efi');
  uki257 = path.join(work, 'uki257.efi');
  await buildUki({ stub: HOST_STUB, ...parts }, uki252);
  await buildUki({ stub: await trixieStub(), ...parts, uname: Buffer.from('6.1.0-test') }, uki257);
});

test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

test('the stub version comes from .sdmagic', async (t) => {
  t.like(parseUki(await readFile(uki252)).stub, { major: 252, source: '.sdmagic' });
  t.like(parseUki(await readFile(uki257)).stub, { major: 257, source: '.sdmagic' });
});

test('PCR 11 of a 252-stub UKI equals systemd-measure calculate, for every phase prefix', async (t) => {
  for (const [name, content] of [['osrel', OSREL], ['cmdline', CMDLINE]]) await writeFile(path.join(work, name), content);
  await writeFile(path.join(work, 'initrd'), INITRD);
  const bytes = await readFile(uki252);
  const phases = ['enter-initrd', 'leave-initrd', 'sysinit', 'ready'];
  for (let n = 1; n <= phases.length; n++) {
    const r = await execa(SYSTEMD_MEASURE, [
      'calculate',
      `--linux=${kernel}`,
      `--osrel=${path.join(work, 'osrel')}`,
      `--cmdline=${path.join(work, 'cmdline')}`,
      `--initrd=${path.join(work, 'initrd')}`,
      '--bank=sha256',
      `--phase=${phases.slice(0, n).join(':')}`,
    ]);
    const expected = /11:sha256=([0-9a-f]{64})/.exec(r.stdout)?.[1];
    if (!expected) return t.fail(`unexpected systemd-measure output: ${r.stdout}`);
    t.is(precomputeUki(bytes, { phases: phases.slice(0, n) }).pcrs['11'], expected, phases.slice(0, n).join(':'));
  }
});

test('PCR 11 for the 257 stub also measures .uname and the stub\'s .sbat, in canonical order', async (t) => {
  const p = precomputeUki(await readFile(uki257));
  const names = p.events.filter((e) => e.pcr === 11 && !e.description.includes('content')).map((e) => e.description);
  t.deepEqual(names, ['.linux', '.osrel', '.cmdline', '.initrd', '.uname', '.sbat']);
  t.is(p.events.find((e) => e.description === '.linux')!.digest, sha256('.linux\0'));
  const p252 = precomputeUki(await readFile(uki252));
  t.deepEqual(
    p252.events.filter((e) => e.pcr === 11 && !e.description.includes('content')).map((e) => e.description),
    ['.linux', '.osrel', '.cmdline', '.initrd'],
  );
});

test('PCR 4: action, separator, then the Authenticode hashes pesign gives for the UKI and its kernel', async (t) => {
  for (const f of [uki252, uki257]) {
    const p = precomputeUki(await readFile(f));
    const pcr4 = p.events.filter((e) => e.pcr === 4);
    t.deepEqual(pcr4.map((e) => e.type), ['EV_EFI_ACTION', 'EV_SEPARATOR', 'EV_EFI_BOOT_SERVICES_APPLICATION', 'EV_EFI_BOOT_SERVICES_APPLICATION']);
    t.is(pcr4[0].digest, sha256('Calling EFI Application from Boot Option'));
    t.is(pcr4[1].digest, sha256(Buffer.alloc(4)));
    t.is(pcr4[2].digest, await pesignHash(f));
    t.is(pcr4[3].digest, await pesignHash(kernel));
    t.is(p.pcrs['4'], extendAll('sha256', pcr4.map((e) => Buffer.from(e.digest, 'hex'))).toString('hex'));
    t.is(precomputeUki(await readFile(f), { secureBoot: true }).events.filter((e) => e.pcr === 4).length, 3);
  }
});

test('PCR 9, 252 stub: the command line as is (UTF-16LE + NUL), then .initrd unchanged', async (t) => {
  const p = precomputeUki(await readFile(uki252));
  const pcr9 = p.events.filter((e) => e.pcr === 9);
  const { stdout: utf16 } = await execa('iconv', ['-f', 'UTF-8', '-t', 'UTF-16LE'], { input: CMDLINE, encoding: 'buffer' });
  t.is(pcr9[0].digest, sha256(Buffer.concat([Buffer.from(utf16), Buffer.alloc(2)])));
  t.is(pcr9[1].digest, sha256(INITRD));
});

test('PCR 9, 257 stub: mangled command line; initrd = .initrd padded to 4 + the stub\'s os-release cpio', async (t) => {
  const p = precomputeUki(await readFile(uki257));
  const pcr9 = p.events.filter((e) => e.pcr === 9);
  t.is(pcr9[0].digest, sha256(Buffer.from('console=ttyS0  quiet\0', 'utf16le')));
  const padded = Buffer.concat([INITRD, Buffer.alloc((4 - (INITRD.length % 4)) % 4)]);
  t.is(pcr9[1].digest, sha256(Buffer.concat([padded, cpioLiteral(Buffer.from(OSREL), { dir: '.extra', fileName: 'os-release' })])));
});

test('the generated os-release cpio is a newc archive GNU cpio reads: dir 0555, file 0444, content intact', async (t) => {
  const archive = cpioLiteral(Buffer.from(OSREL), { dir: '.extra', fileName: 'os-release' });
  t.is(archive.length % 4, 0);
  const list = await execa('cpio', ['-it', '-v', '--quiet'], { input: archive });
  const lines = list.stdout.trim().split('\n');
  t.is(lines.length, 2);
  t.regex(lines[0], /^dr-xr-xr-x\s+1 root\s+root\s+0 .* \.extra$/);
  t.regex(lines[1], new RegExp(`^-r--r--r--\\s+1 root\\s+root\\s+${OSREL.length} .* \\.extra/os-release$`));
  const dir = await mkdtemp(path.join(work, 'cpio-'));
  await execa('cpio', ['-id', '--quiet'], { input: archive, cwd: dir });
  t.is(await readFile(path.join(dir, '.extra/os-release'), 'utf8'), OSREL);
  // byte-level facts of systemd's writer: inode 1 for the dir, 2 for the file, mtime 0, trailer name size "0000000B"
  t.is(archive.subarray(6, 14).toString(), '00000001');
  t.is(archive.subarray(14, 22).toString(), '0000416d');
  t.true(archive.includes(Buffer.from('0000000B00000000TRAILER!!!\0\0\0\0')));
});

test('--bank sha384 gives 48-byte values', async (t) => {
  const p = precomputeUki(await readFile(uki252), { bank: 'sha384' });
  for (const v of Object.values(p.pcrs)) t.is(v.length, 96);
  t.is(p.pcrs['12'], '0'.repeat(96));
});

test('CLI: measure uki --json prints the contract shape', async (t) => {
  const r = await sextant(['measure', 'uki', uki257, '--json', '--phases', 'enter-initrd,leave-initrd,sysinit,ready']);
  t.is(r.exitCode, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.deepEqual(Object.keys(j.pcrs), ['4', '9', '11', '12', '13']);
  for (const v of Object.values(j.pcrs)) t.regex(v as string, /^[0-9a-f]{64}$/);
  t.like(j.events[0], { pcr: 4, type: 'EV_EFI_ACTION', description: 'Calling EFI Application from Boot Option' });
  t.is(j.events.filter((e: { type: string }) => e.type === 'SYSTEMD_PCRPHASE').length, 4);
  const human = await sextant(['measure', 'uki', uki257]);
  t.is(human.exitCode, 0);
  t.regex(human.stdout, / 11 {2}[0-9a-f]{64}/);
});

test('CLI: a PE without .linux is UKI_MALFORMED (exit 2); a missing file FILE_NOT_FOUND', async (t) => {
  const r = await sextant(['measure', 'uki', HOST_STUB]);
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /^sextant: UKI_MALFORMED: /);
  t.is((await sextant(['measure', 'uki', path.join(work, 'nope.efi')])).exitCode, 2);
});

test('CLI: measure pe prints the Authenticode hash pesign gives', async (t) => {
  const r = await sextant(['measure', 'pe', uki252, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  t.is(JSON.parse(r.stdout).authenticode.sha256, await pesignHash(uki252));
});

test('CLI: measure example builds a UKI from the host packages and predicts its PCRs', async (t) => {
  const r = await sextant(['measure', 'example', '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.regex(j.pcrs['11'], /^[0-9a-f]{64}$/);
  t.not(j.pcrs['11'], '0'.repeat(64));
});

/** A small UKI (the stub itself stands in for the kernel PE) keeps each fuzz run cheap; `hot` are the header offsets worth mutating. */
async function fuzzUki(name: string): Promise<{ b: Buffer; hot: number[] }> {
  const small = path.join(work, name);
  await buildUki({ stub: await trixieStub(), linux: { file: HOST_STUB }, initrd: INITRD, cmdline: Buffer.from(CMDLINE), osrel: Buffer.from(OSREL) }, small);
  const b = await readFile(small);
  const pe = parseUki(b).pe;
  return { b, hot: [0x3c, pe.checkSumOffset - 64, ...pe.sections.map((s) => s.headerOffset)] };
}

test('fuzz: mutated UKIs never throw anything but SextantError', async (t) => {
  const { b, hot } = await fuzzUki('small.efi');
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom(...hot), fc.nat({ max: 47 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      fc.nat({ max: b.length }),
      (edits, cut) => {
        const m = Buffer.from(b.subarray(0, Math.max(cut, 0x400)));
        for (const [base, off, v] of edits) if (base + off < m.length) m[base + off] = v;
        try {
          precomputeUki(m);
        } catch (e) {
          if (!isSextantError(e)) throw e;
        }
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test('fuzz: for mutated UKIs, the file path (plan from the headers, then one pass) and the in-memory path agree', async (t) => {
  const { b, hot } = await fuzzUki('small-file.efi');
  const outcome = async (f: () => unknown): Promise<unknown> => {
    try {
      return await f();
    } catch (e) {
      if (!isSextantError(e)) throw e;
      return e.code;
    }
  };
  const mutated = path.join(work, 'mutated.efi');
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...hot), fc.nat({ max: 47 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), async (edits) => {
      const m = Buffer.from(b);
      for (const [base, off, v] of edits) if (base + off < m.length) m[base + off] = v;
      await writeFile(mutated, m);
      t.deepEqual(await outcome(() => precomputeUkiFile(mutated)), await outcome(() => precomputeUki(m)));
    }),
    { numRuns: 150 },
  );
});

test('a large UKI read in one pass, on one thread or two, gives the same prediction as in memory', async (t) => {
  const initrd = randomBytes(PARALLEL_THRESHOLD + (3 << 20) + 5); // big enough for the two-lane path, odd length
  // the 257 stub: its initrd stream (PCR 11 .initrd, then + cpio for PCR 9) has two checkpoints
  const big = path.join(work, 'big.efi');
  await buildUki({ stub: await trixieStub(), linux: { file: kernel }, initrd, cmdline: Buffer.from(CMDLINE), osrel: Buffer.from(OSREL) }, big);
  const opts = { phases: ['enter-initrd'] };
  const inMemory = precomputeUki(await readFile(big), opts);
  t.deepEqual(await precomputeUkiFile(big, { ...opts, threads: 2 }), inMemory);
  t.deepEqual(await precomputeUkiFile(big, { ...opts, threads: 1 }), inMemory);
  t.deepEqual(await precomputeUkiFile(big, { ...opts, bank: 'sha384', threads: 2 }), precomputeUki(await readFile(big), { ...opts, bank: 'sha384' }));
});

test('precomputeUkiFile: a directory or a missing file is FILE_NOT_FOUND', async (t) => {
  await t.throwsAsync(precomputeUkiFile(work), { code: 'FILE_NOT_FOUND' });
  await t.throwsAsync(precomputeUkiFile(path.join(work, 'missing.efi')), { code: 'FILE_NOT_FOUND' });
});
