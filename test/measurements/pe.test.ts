import test from 'ava';
import fc from 'fast-check';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isSextantError } from '../../lib/errors.js';
import { authenticodeDigest } from '../../measurements/pe/authenticode.js';
import { parsePe } from '../../measurements/pe/parse.js';
import { osslsigncodeCalculatedDigest, pesignHash, signWithThrowawayCert } from '../helpers/oracles.js';
import { buildUki, HOST_STUB, hostKernel, trixieStub } from '../helpers/uki.js';

let work: string;
let uki252: string;
let uki257: string;

test.before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'sextant-pe-test-'));
  const kernel = await hostKernel();
  const parts = { linux: { file: kernel }, initrd: Buffer.from('initrd bytes\n'), cmdline: Buffer.from('quiet'), osrel: Buffer.from('ID=debian\n') };
  uki252 = path.join(work, 'uki252.efi');
  uki257 = path.join(work, 'uki257.efi');
  await buildUki({ stub: HOST_STUB, ...parts }, uki252);
  await buildUki({ stub: await trixieStub(), ...parts }, uki257);
});

test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

test('parses the host stub: PE32+, its sections, no certificate table', async (t) => {
  const pe = parsePe(await readFile(HOST_STUB));
  t.is(pe.format, 'PE32+');
  t.is(pe.machine, 0x8664);
  t.is(pe.certificateTable, undefined);
  const names = pe.sections.map((s) => s.name);
  for (const n of ['.text', '.sbat', '.sdmagic']) t.true(names.includes(n), n);
});

for (const [name, file] of [
  ['host stub (systemd 252)', () => HOST_STUB],
  ['kernel', () => hostKernel()],
  ['UKI with the 252 stub', () => uki252],
  ['UKI with the 257 stub', () => uki257],
] as const) {
  test(`Authenticode SHA-256 of the ${name} equals pesign -h`, async (t) => {
    const f = await file();
    t.is(authenticodeDigest(await readFile(f), 'sha256').toString('hex'), await pesignHash(f));
  });
}

test('signing with osslsigncode does not change the Authenticode hash; SHA-384 matches osslsigncode', async (t) => {
  // the 257 UKI ends at a section boundary (8-byte aligned), so the signer appends no padding
  const before = await readFile(uki257);
  t.is(before.length % 8, 0);
  const signed = path.join(work, 'signed384.efi');
  await signWithThrowawayCert(work, uki257, signed, 'sha384');
  const after = await readFile(signed);
  t.truthy(parsePe(after).certificateTable, 'the signed file has a certificate table');
  for (const alg of ['sha256', 'sha384'] as const) {
    t.is(authenticodeDigest(after, alg).toString('hex'), authenticodeDigest(before, alg).toString('hex'), alg);
  }
  t.is(authenticodeDigest(after, 'sha384').toString('hex'), await osslsigncodeCalculatedDigest(signed));
  t.is(authenticodeDigest(after, 'sha256').toString('hex'), await pesignHash(signed));
});

test('a file not 8-byte aligned: the signer zero-pads it, and that padding is hashed (as firmware does)', async (t) => {
  // objcopy keeps the 252 stub's symbol table after the sections, so this UKI has trailing data
  const before = await readFile(uki252);
  t.not(before.length % 8, 0);
  const signed = path.join(work, 'signed256.efi');
  await signWithThrowawayCert(work, uki252, signed, 'sha256');
  const padded = Buffer.concat([before, Buffer.alloc(8 - (before.length % 8))]);
  const after = await readFile(signed);
  t.is(authenticodeDigest(after).toString('hex'), authenticodeDigest(padded).toString('hex'));
  t.is(authenticodeDigest(after).toString('hex'), await osslsigncodeCalculatedDigest(signed));
});

test('bad input is PE_MALFORMED', (t) => {
  for (const bytes of [new Uint8Array(0), Buffer.from('MZ'), Buffer.alloc(4096), Buffer.from('#!/bin/sh\necho hi\n')]) {
    t.throws(() => parsePe(bytes), { code: 'PE_MALFORMED' });
  }
});

test('a truncated UKI is PE_MALFORMED', async (t) => {
  const b = await readFile(uki257);
  t.throws(() => parsePe(b.subarray(0, b.length - 100)), { code: 'PE_MALFORMED' });
  t.throws(() => parsePe(b.subarray(0, 300)), { code: 'PE_MALFORMED' });
});

/** Parse + hash; the only error allowed out is a SextantError. */
function parseAndHash(bytes: Uint8Array): void {
  try {
    authenticodeDigest(bytes, 'sha256');
  } catch (e) {
    if (!isSextantError(e)) throw e;
  }
}

test('fuzz: arbitrary bytes never throw anything but SextantError', (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => parseAndHash(b)), { numRuns: 500 });
  // arbitrary bytes behind a valid MZ + PE signature reach the deeper header checks
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 1024 }), (tail) => {
      const b = Buffer.alloc(0x48 + tail.length);
      b.write('MZ', 0, 'latin1');
      b.writeUInt32LE(0x40, 0x3c);
      b.write('PE\0\0', 0x40, 'latin1');
      b.set(tail, 0x44);
      parseAndHash(b);
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('fuzz: mutated real PE headers never throw anything but SextantError', async (t) => {
  const stub = await readFile(HOST_STUB);
  const hdr = parsePe(stub).sizeOfHeaders;
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat({ max: hdr - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat({ max: stub.length }), (edits, cut) => {
      const b = Buffer.from(stub.subarray(0, Math.max(cut, hdr)));
      for (const [at, v] of edits) b[at] = v;
      parseAndHash(b);
    }),
    { numRuns: 300 },
  );
  t.pass();
});
