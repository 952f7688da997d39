import test from 'ava';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { sextant } from '../helpers/cli.js';
import { editLuks2Json } from '../agent/disk/luks2-header-edit.js';
import {
  MiB, blkid, cryptsetup, FOREIGN_FORMAT, luksJson, plantData, sha256File, sha256Range, sparseImage, keyFileDir, tempDir, writeAt,
} from '../agent/disk/images.js';

// Real cryptsetup, blkid, mkfs.ext4 and sgdisk on image files (these hosts have no
// device-mapper, so always --no-open; cryptsetup formats, dumps and tests keys on regular
// files without a loop device).

const KEY = randomBytes(64);
const OTHER_KEY = randomBytes(64);

const setup = (t: { teardown: (f: () => Promise<void>) => void }) => keyFileDir(t, KEY);

function prepare(device: string, keyFile: string) {
  return sextant(['agent', 'disk', 'prepare', '--device', device, '--key-file', keyFile, '--no-open', '--json']);
}

/** A disk sextant itself prepared (blank -> format), to start tampering from. */
async function oursImage(dir: string, keyFile: string, name = 'ours.img'): Promise<string> {
  const img = await sparseImage(path.join(dir, name));
  const r = await prepare(img, keyFile);
  if (r.exitCode !== 0) throw new Error(r.stderr);
  return img;
}

test('blank image -> LUKS2 with exactly the allowed parameters, our token, and the key opens it', async (t) => {
  const { dir, keyFile } = await setup(t);
  const img = await sparseImage(path.join(dir, 'blank.img'));
  await plantData(img); // beyond the blank-check range: must survive the format
  const middle = await sha256Range(img, 17 * MiB, 30 * MiB);
  const r = await prepare(img, keyFile);
  t.is(r.exitCode, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { found: 'blank', steps: ['formatted', 'token-written', 'key-verified'] });

  const m = await luksJson(img);
  t.deepEqual(Object.keys(m.segments), ['0']);
  t.like(m.segments['0'], { type: 'crypt', encryption: 'aes-xts-plain64', sector_size: 4096, offset: String(16 * MiB) });
  t.is(m.segments['0'].integrity, undefined);
  t.deepEqual(Object.keys(m.keyslots), ['0']);
  t.like(m.keyslots['0'], { type: 'luks2', key_size: 64, kdf: { type: 'pbkdf2', hash: 'sha256', iterations: 1000 }, area: { encryption: 'aes-xts-plain64' } });
  t.deepEqual(m.tokens, { '0': { type: 'sextant', keyslots: [], version: 1, filesystem: 'pending' } });
  t.like(await blkid(img), { TYPE: 'crypto_LUKS', VERSION: '2', LABEL: 'sextant-state' });
  t.is((await cryptsetup(['open', '--test-passphrase', '--key-file', '-', img], KEY)).exitCode, 0);
  t.is((await cryptsetup(['open', '--test-passphrase', '--key-file', '-', img], OTHER_KEY)).exitCode, 2);
  t.is(await sha256Range(img, 17 * MiB, 30 * MiB), middle, 'luksFormat wrote beyond the header area');
});

test('our own disk again -> verified, not rewritten (bytes unchanged)', async (t) => {
  const { dir, keyFile } = await setup(t);
  const img = await oursImage(dir, keyFile);
  const before = await sha256File(img);
  const r = await prepare(img, keyFile);
  t.is(r.exitCode, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { found: 'sextant', steps: ['header-verified', 'key-verified'] });
  t.is(await sha256File(img), before);
});

test('the key read from stdin works the same as a key file', async (t) => {
  const { dir, keyFile } = await setup(t);
  const img = await oursImage(dir, keyFile);
  const r = await sextant(['agent', 'disk', 'prepare', '--device', img, '--key-file', '-', '--no-open', '--json'], { input: KEY });
  t.is(r.exitCode, 0, r.stderr);
  const bad = await sextant(['agent', 'disk', 'prepare', '--device', img, '--key-file', '-', '--no-open', '--json'], { input: OTHER_KEY });
  t.like(JSON.parse(bad.stdout), { ok: false, code: 'DISK_WRONG_KEY' });
});

/** Each case: build an image, run prepare, expect exit 1 with `code`, and the file's bytes unchanged. */
const refusals: { name: string; code: string; make: (dir: string, keyFile: string) => Promise<string> }[] = [
  {
    name: 'our LUKS2 with another key',
    code: 'DISK_WRONG_KEY',
    make: async (dir) => {
      const other = path.join(dir, 'other-key');
      await writeFile(other, OTHER_KEY);
      return oursImage(dir, other);
    },
  },
  {
    name: 'a foreign LUKS2 (no sextant token)',
    code: 'DISK_FOREIGN_DATA',
    make: async (dir) => {
      const img = await sparseImage(path.join(dir, 'foreign.img'));
      await execa('cryptsetup', [...FOREIGN_FORMAT, img], { input: OTHER_KEY });
      return img;
    },
  },
  {
    name: 'a foreign LUKS2 in sextant\'s exact shape and label but no token, other key',
    code: 'DISK_WRONG_KEY',
    make: async (dir) => {
      const img = await sparseImage(path.join(dir, 'lookalike.img'));
      await execa('cryptsetup', ['luksFormat', '--type', 'luks2', '--cipher', 'aes-xts-plain64', '--key-size', '512', '--sector-size', '4096', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--label', 'sextant-state', '--key-file', '-', '--batch-mode', img], { input: OTHER_KEY });
      return img;
    },
  },
  {
    name: 'LUKS1',
    code: 'DISK_FOREIGN_DATA',
    make: async (dir) => {
      const img = await sparseImage(path.join(dir, 'luks1.img'));
      await execa('cryptsetup', ['luksFormat', '--type', 'luks1', '--pbkdf-force-iterations', '1000', '--key-file', '-', '--batch-mode', img], { input: OTHER_KEY });
      return img;
    },
  },
  {
    name: 'an ext4 filesystem',
    code: 'DISK_FOREIGN_DATA',
    make: async (dir) => {
      const img = await sparseImage(path.join(dir, 'ext4.img'));
      await execa('mkfs.ext4', ['-q', '-F', img]);
      return img;
    },
  },
  {
    name: 'a GPT partition table',
    code: 'DISK_FOREIGN_DATA',
    make: async (dir) => {
      const img = await sparseImage(path.join(dir, 'gpt.img'));
      await execa('sgdisk', ['-n1:0:0', '-c1:sextant-state', '-t1:8300', img]);
      return img;
    },
  },
  {
    name: 'unknown data (no signature, non-zero bytes in the first MiB)',
    code: 'DISK_FOREIGN_DATA',
    make: async (dir) => {
      const img = await sparseImage(path.join(dir, 'unknown.img'));
      await writeAt(img, 512 * 1024, randomBytes(4096));
      return img;
    },
  },
  {
    name: 'unknown data only in the last MiB (e.g. a backup GPT)',
    code: 'DISK_FOREIGN_DATA',
    make: async (dir) => {
      const img = await sparseImage(path.join(dir, 'tail.img'));
      await writeAt(img, 48 * MiB - 4096, randomBytes(4096));
      return img;
    },
  },
  {
    name: 'two filesystem signatures (blkid: ambivalent)',
    code: 'DISK_FOREIGN_DATA',
    make: async (dir) => {
      const img = await sparseImage(path.join(dir, 'amb.img'));
      const vfat = await sparseImage(path.join(dir, 'vfat.img'), 8 * MiB);
      await execa('mkfs.ext4', ['-q', '-F', img]);
      await execa('mkfs.vfat', [vfat]);
      await execa('dd', [`if=${vfat}`, `of=${img}`, 'bs=512', 'count=1', 'conv=notrunc', 'status=none']);
      return img;
    },
  },
  {
    name: 'our header with the data segment switched to cipher_null',
    code: 'DISK_HEADER_REJECTED',
    make: async (dir, keyFile) => {
      const img = await oursImage(dir, keyFile);
      await editLuks2Json(img, (m) => (m.segments['0'].encryption = 'cipher_null-ecb'));
      return img;
    },
  },
  {
    name: 'our header with a plain-text (cipher_null) keyslot area',
    code: 'DISK_HEADER_REJECTED',
    make: async (dir, keyFile) => {
      const img = await oursImage(dir, keyFile);
      await editLuks2Json(img, (m) => (m.keyslots['0'].area.encryption = 'cipher_null-ecb'));
      return img;
    },
  },
  {
    name: 'our header plus an argon2id keyslot',
    code: 'DISK_HEADER_REJECTED',
    make: async (dir, keyFile) => {
      const img = await oursImage(dir, keyFile);
      const other = path.join(dir, 'k2');
      await writeFile(other, OTHER_KEY);
      await execa('cryptsetup', ['luksAddKey', '--pbkdf', 'argon2id', '--pbkdf-force-iterations', '4', '--pbkdf-memory', '32', '--key-file', '-', img, other], { input: KEY });
      return img;
    },
  },
  {
    name: 'a 512-byte-sector LUKS2 carrying a copied sextant token',
    code: 'DISK_HEADER_REJECTED',
    make: async (dir) => {
      const img = await sparseImage(path.join(dir, 's512.img'));
      await execa('cryptsetup', [...FOREIGN_FORMAT, '--cipher', 'aes-xts-plain64', '--key-size', '512', '--sector-size', '512', '--label', 'sextant-state', img], { input: KEY });
      await execa('cryptsetup', ['token', 'import', '--json-file', '-', img], { input: '{"type":"sextant","keyslots":[],"version":1,"filesystem":"ext4"}' });
      return img;
    },
  },
  {
    name: 'our header with a second, foreign token',
    code: 'DISK_HEADER_REJECTED',
    make: async (dir, keyFile) => {
      const img = await oursImage(dir, keyFile);
      await execa('cryptsetup', ['token', 'import', '--json-file', '-', img], { input: '{"type":"systemd-recovery","keyslots":[]}' });
      return img;
    },
  },
];

for (const c of refusals) {
  test(`refused, bytes unchanged: ${c.name}`, async (t) => {
    const { dir, keyFile } = await setup(t);
    const img = await c.make(dir, keyFile);
    const before = await sha256File(img);
    const r = await prepare(img, keyFile);
    t.is(r.exitCode, 1, r.stderr);
    const out = JSON.parse(r.stdout);
    t.like(out, { ok: false, code: c.code });
    t.log(out.message);
    t.is(await sha256File(img), before);
  });
}

test('cipher_null segment: cryptsetup itself still accepts the key (why the allow-list exists)', async (t) => {
  const { dir, keyFile } = await setup(t);
  const img = await oursImage(dir, keyFile);
  await editLuks2Json(img, (m) => (m.segments['0'].encryption = 'cipher_null-ecb'));
  t.is((await cryptsetup(['open', '--test-passphrase', '--key-file', '-', img], KEY)).exitCode, 0);
  t.regex((await execa('cryptsetup', ['luksDump', img])).stdout, /cipher: cipher_null-ecb/);
});

test('usage errors exit 2; a too-short key is KEY_INVALID and touches nothing', async (t) => {
  const { dir } = await setup(t);
  const img = await sparseImage(path.join(dir, 'blank.img'));
  t.is((await sextant(['agent', 'disk', 'prepare', '--device', img, '--no-open'])).exitCode, 2);
  const short = path.join(dir, 'short');
  await writeFile(short, 'tiny');
  const r = await sextant(['agent', 'disk', 'prepare', '--device', img, '--key-file', short, '--no-open', '--json']);
  t.is(r.exitCode, 2);
  t.like(JSON.parse(r.stdout), { code: 'KEY_INVALID' });
  t.false('TYPE' in (await blkid(img)));
});
