/**
 * Inspection never writes to a disk the agent has not proven its own (issue 11, item 6): real
 * cryptsetup on image files, SHA-256 of the whole image before and after. cryptsetup "repairs"
 * a damaged header copy from the other whenever it can open the device read-write (luksDump
 * alone did, on main: 160 bytes changed under a refusal that said "nothing was written").
 */
import test from 'ava';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { prepareStateDisk } from '../../agent/disk/prepare.js';
import type { Runner } from '../../agent/disk/runner.js';
import { sextant } from '../helpers/cli.js';
import { FOREIGN_FORMAT, MiB, sha256File, sparseImage, keyFileDir, tempDir, writeAt } from '../agent/disk/images.js';

const KEY = randomBytes(64);
const HDR = 16 * 1024; // cryptsetup's default hdr_size: the secondary copy starts here
const GARBAGE = Buffer.alloc(64, 0x58);

const setup = (t: { teardown: (f: () => Promise<void>) => void }) => keyFileDir(t, KEY);

const prepare = (img: string, keyFile: string) => sextant(['agent', 'disk', 'prepare', '--device', img, '--key-file', keyFile, '--no-open', '--json']);

/** A state disk sextant formatted with KEY: the owner's key is the one offered below. */
async function ours(dir: string, keyFile: string): Promise<string> {
  const img = await sparseImage(path.join(dir, 'ours.img'));
  const r = await prepare(img, keyFile);
  if (r.exitCode !== 0) throw new Error(r.stderr);
  return img;
}

const cases: { name: string; code: string; message?: RegExp; make: (dir: string, keyFile: string) => Promise<string> }[] = [
  {
    name: 'primary header copy damaged (64 bytes at offset 16), offered the right key',
    code: 'DISK_HEADER_DAMAGED',
    message: /\(primary copy: [^;]*\)/,
    make: async (dir, keyFile) => {
      const img = await ours(dir, keyFile);
      await writeAt(img, 16, GARBAGE);
      return img;
    },
  },
  {
    name: 'secondary header copy damaged (64 bytes at hdr_size + 16), offered the right key',
    code: 'DISK_HEADER_DAMAGED',
    message: /\(secondary copy: [^;]*\)/,
    make: async (dir, keyFile) => {
      const img = await ours(dir, keyFile);
      await writeAt(img, HDR + 16, GARBAGE);
      return img;
    },
  },
  {
    name: 'both header copies damaged',
    code: 'DISK_HEADER_DAMAGED',
    message: /primary copy: .*secondary copy: /,
    make: async (dir, keyFile) => {
      const img = await ours(dir, keyFile);
      await writeAt(img, 16, GARBAGE);
      await writeAt(img, HDR + 16, GARBAGE);
      return img;
    },
  },
  {
    name: 'an intact foreign LUKS2 disk',
    code: 'DISK_FOREIGN_DATA',
    make: async (dir) => {
      const img = await sparseImage(path.join(dir, 'foreign.img'));
      await execa('cryptsetup', [...FOREIGN_FORMAT, img], { input: randomBytes(64) });
      return img;
    },
  },
  {
    name: 'a blank partition whose size is not a multiple of 4096 (48 MiB + 512)',
    code: 'DISK_UNALIGNED',
    make: async (dir) => sparseImage(path.join(dir, 'unaligned.img'), 48 * MiB + 512),
  },
];

for (const c of cases) {
  test(`refused ${c.code}, whole image SHA-256 unchanged: ${c.name}`, async (t) => {
    const { dir, keyFile } = await setup(t);
    const img = await c.make(dir, keyFile);
    const before = await sha256File(img);
    const r = await prepare(img, keyFile);
    t.is(r.exitCode, 1, r.stderr);
    const out = JSON.parse(r.stdout) as { code: string; message: string };
    t.is(out.code, c.code, out.message);
    if (c.message) t.regex(out.message, c.message);
    t.regex(out.message, /nothing was written/);
    t.is(await sha256File(img), before);
  });
}

/** Records every external command; `device` must never be a cryptsetup argument before the key was proven. */
function recording(calls: string[][]): Runner {
  return async (cmd, args, opts) => {
    calls.push([cmd, ...args]);
    return run(cmd, args, opts);
  };
}

test('our own intact disk: cryptsetup only ever sees a scratch copy, never the device (bytes unchanged)', async (t) => {
  const { dir, keyFile } = await setup(t);
  const img = await ours(dir, keyFile);
  const before = await sha256File(img);
  const calls: string[][] = [];
  const r = await prepareStateDisk({ device: img, key: KEY, open: false, runner: recording(calls) });
  t.deepEqual(r.steps, ['header-verified', 'key-verified']);
  const cs = calls.filter((c) => c[0] === 'cryptsetup');
  t.true(cs.some((c) => c.includes('luksDump')) && cs.some((c) => c.includes('--test-passphrase')), JSON.stringify(cs));
  t.false(cs.some((c) => c.includes(img)), JSON.stringify(cs));
  t.is(await sha256File(img), before);
});

test('a crash between cryptsetup\'s two header writes (secondary one generation older, both intact) is not damage: the owner\'s key proceeds, bytes unchanged', async (t) => {
  const { dir, keyFile } = await setup(t);
  const img = await ours(dir, keyFile);
  const oldSecondary = (await readFile(img)).subarray(HDR, 2 * HDR);
  await execa('cryptsetup', ['token', 'import', '--token-id', '0', '--token-replace', '--json-file', '-', img], { input: '{"type":"sextant","keyslots":[],"version":1,"filesystem":"pending"}' });
  await writeAt(img, HDR, oldSecondary);
  const before = await sha256File(img);
  const r = await prepare(img, keyFile);
  t.is(r.exitCode, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { found: 'sextant', steps: ['header-verified', 'key-verified'] });
  t.is(await sha256File(img), before);
});
