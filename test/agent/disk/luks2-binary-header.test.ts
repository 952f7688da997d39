/**
 * The header-copy integrity check against headers the real cryptsetup wrote: both copies of a
 * fresh header verify (so our checksum is cryptsetup's), and a single changed byte anywhere in
 * either copy marks exactly that copy damaged (the checksum covers all hdr_size bytes).
 */
import test from 'ava';
import fc from 'fast-check';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { readHeaderArea } from '../../../agent/disk/header-copy.js';
import { checkLuks2Headers, describeDamage } from '../../../agent/disk/luks2-binary-header.js';
import { FOREIGN_FORMAT, MiB, sparseImage, tempDir } from './images.js';

let area: Buffer;
let hdrSize: number;

test.before(async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const img = await sparseImage(path.join(dir, 'h.img'), 32 * MiB);
    await execa('cryptsetup', [...FOREIGN_FORMAT, img], { input: randomBytes(32) });
    area = await readHeaderArea(img, 32 * MiB);
  } finally {
    await cleanup();
  }
  const i = checkLuks2Headers(area);
  if (!i.primary.ok) throw new Error(i.primary.problem);
  hdrSize = i.primary.hdrSize;
});

test('a header cryptsetup wrote: both copies intact, same seqid', (t) => {
  const i = checkLuks2Headers(area);
  t.like(i, { primary: { ok: true, offset: 0, hdrSize }, secondary: { ok: true, offset: hdrSize, hdrSize } });
  t.is(describeDamage(i), undefined);
  t.is(hdrSize, 16 * 1024);
});

test('one changed byte anywhere in a copy: exactly that copy is damaged', (t) => {
  t.notThrows(() => fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 * hdrSize - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
      const b = Buffer.from(area.subarray(0, 2 * hdrSize + 4096));
      b[at] ^= x;
      const i = checkLuks2Headers(b);
      const inPrimary = at < hdrSize;
      return i.primary.ok === !inPrimary && i.secondary.ok === inPrimary && describeDamage(i) !== undefined;
    }),
    { numRuns: 500 },
  ));
});

test('both copies overwritten: both reported; a blank area: no header at all', (t) => {
  const b = Buffer.from(area);
  b.fill(0x58, 16, 80);
  b.fill(0x58, hdrSize + 16, hdrSize + 80);
  t.regex(describeDamage(checkLuks2Headers(b)) ?? '', /^primary copy: .*; secondary copy: /);
  t.like(checkLuks2Headers(Buffer.alloc(64 * 1024)), { primary: { ok: false }, secondary: { ok: false } });
});
