import test from 'ava';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { prepareStateDisk } from '../../agent/disk/prepare.js';
import type { Runner } from '../../agent/disk/runner.js';
import { MiB, cryptsetup, luksJson, plantData, sha256File, sha256Range, sparseImage, tempDir } from '../agent/disk/images.js';

// A crash after the Nth external command (the command completes, then the process "dies"),
// for every N the run makes; then a restart with the real runner. Real cryptsetup on files.

class InjectedCrash extends Error {}

function crashAfter(n: number, calls: string[]): Runner {
  return async (cmd, args, opts) => {
    const r = await run(cmd, args, opts);
    calls.push(`${cmd} ${args[0]}`);
    if (calls.length === n) throw new InjectedCrash(`crash after call ${n}: ${cmd} ${args.join(' ')}`);
    return r;
  };
}

const KEY = randomBytes(64);

async function countCalls(device: string): Promise<string[]> {
  const calls: string[] = [];
  await prepareStateDisk({ device, key: KEY, open: false, runner: crashAfter(Infinity, calls) });
  return calls;
}

test('blank disk: a crash after any step, then a restart, converges to our verified header; planted data survives', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const total = (await countCalls(await sparseImage(path.join(dir, 'count.img')))).length;
  t.true(total >= 4);
  for (let n = 1; n <= total; n++) {
    const img = await sparseImage(path.join(dir, `crash-${n}.img`));
    await plantData(img);
    const planted = await sha256Range(img, 17 * MiB, 30 * MiB);
    const calls: string[] = [];
    await t.throwsAsync(prepareStateDisk({ device: img, key: KEY, open: false, runner: crashAfter(n, calls) }), { instanceOf: InjectedCrash });
    const after = await prepareStateDisk({ device: img, key: KEY, open: false });
    t.log(`crash after ${calls.at(-1)} (call ${n}/${total}) -> restart found ${after.found}: ${after.steps.join(', ')}`);
    t.true(after.steps.includes('key-verified'));
    t.like((await luksJson(img)).tokens, { '0': { type: 'sextant' } });
    t.is((await cryptsetup(['open', '--test-passphrase', '--key-file', '-', img], KEY)).exitCode, 0);
    t.is(await sha256Range(img, 17 * MiB, 30 * MiB), planted, `data beyond the header area changed (crash ${n})`);
  }
});

test('interrupted inside luksFormat (header written, keyslot not): redone only when the data area is untouched', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  // cryptsetup writes the header, then fails to add the keyslot (cipher_null keyslots are
  // refused): exactly the state a power loss between those two writes leaves.
  const halfFormat = async (img: string) => {
    await execa('cryptsetup', ['luksFormat', '--type', 'luks2', '--cipher', 'aes-xts-plain64', '--key-size', '512', '--sector-size', '4096', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--label', 'sextant-state', '--keyslot-cipher', 'cipher_null-ecb', '--keyslot-key-size', '8', '--key-file', '-', '--batch-mode', img], { input: KEY, reject: false });
    t.deepEqual((await luksJson(img)).keyslots, {});
  };
  const clean = await sparseImage(path.join(dir, 'half.img'));
  await halfFormat(clean);
  const r = await prepareStateDisk({ device: clean, key: KEY, open: false });
  t.like(r, { found: 'sextant-unfinished', steps: ['reformatted-unfinished', 'token-written', 'key-verified'] });

  const used = await sparseImage(path.join(dir, 'half-used.img'));
  await halfFormat(used);
  await plantData(used, 16 * MiB + 4096, 4096); // something in the data area's first MiB
  const before = await sha256File(used);
  await t.throwsAsync(prepareStateDisk({ device: used, key: KEY, open: false }), { code: 'DISK_FOREIGN_DATA' });
  t.is(await sha256File(used), before);
});

test('disks with data: a crash at any point and a restart never change a byte', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const ext4 = await sparseImage(path.join(dir, 'ext4.img'));
  await execa('mkfs.ext4', ['-q', '-F', ext4]);
  const foreign = await sparseImage(path.join(dir, 'foreign.img'));
  await execa('cryptsetup', ['luksFormat', '--type', 'luks2', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', '-', '--batch-mode', foreign], { input: randomBytes(64) });
  for (const img of [ext4, foreign]) {
    const before = await sha256File(img);
    for (let n = 1; n <= 3; n++) {
      await t.throwsAsync(prepareStateDisk({ device: img, key: KEY, open: false, runner: crashAfter(n, []) }));
      await t.throwsAsync(prepareStateDisk({ device: img, key: KEY, open: false }), { code: 'DISK_FOREIGN_DATA' });
      t.is(await sha256File(img), before);
    }
  }
});
