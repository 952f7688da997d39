#!/usr/bin/env node
// Regenerates test/fixtures/secureboot/boot/ from a real Secure Boot boot (qemu TCG, OVMF's
// secure-boot build with SMM, swtpm): the 257-stub capture UKI signed with the test db key
// (`sextant image sign-uki`), booted from a variable store `sextant image sb-vars` wrote from
// the real-world key folder (test PK, test + Microsoft KEK and db certificates, Microsoft's
// 2021-04-29 dbx update). Writes the firmware event log, every PCR of every bank, and what
// went in (hashes of the UKIs, the store and the key folder's files).
//
//   node scripts/boot/capture-secureboot-fixture.mjs
import { $, fs, path } from 'zx';
import { createHash } from 'node:crypto';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
$.cwd = root;
$.verbose = false;
await $`npx tsc -p tsconfig.json`;
const { secureBootCapture } = await import(`${root}/dist/test/helpers/boot/secureboot.js`);
const { bootAndCapture, tail } = await import(`${root}/dist/test/helpers/qemu.js`);

const sha256 = async (f) => createHash('sha256').update(await fs.readFile(f)).digest('hex');
const work = path.join(root, '.cache/boots/secureboot');
await fs.remove(work);
await fs.mkdirp(work);
const cap = await secureBootCapture(work);
console.log(`signed UKI ${await sha256(cap.signed)}, store ${await sha256(cap.vars)}; booting with Secure Boot on...`);
const boot = await bootAndCapture({ efiBinary: cap.signed, secureBootVars: cap.vars, timeoutMs: 900_000, log: (l) => process.env.VERBOSE && console.error(l) });
console.log(`boot took ${boot.bootSeconds.toFixed(1)} s`);

const keyFiles = {};
for (const db of ['PK', 'KEK', 'db', 'dbx']) {
  for (const f of (await fs.readdir(path.join(cap.keys, db))).sort()) keyFiles[`${db}/${f}`] = await sha256(path.join(cap.keys, db, f));
}
const firstLine = (s) => String(s).split('\n')[0].trim();
const out = path.join(root, 'test/fixtures/secureboot/boot');
await fs.mkdirp(out);
await fs.writeFile(path.join(out, 'eventlog.bin'), boot.eventlog);
await fs.writeJson(path.join(out, 'pcrs.json'), { banks: boot.pcrs }, { spaces: 2 });
await fs.writeJson(
  path.join(out, 'boot.json'),
  {
    name: 'secureboot-stub257',
    capturedAt: new Date().toISOString(),
    bootSeconds: Math.round(boot.bootSeconds * 10) / 10,
    unsignedUki: cap.unsigned.recipe,
    signedUkiSha256: await sha256(cap.signed),
    varsSha256: await sha256(cap.vars),
    keyFiles,
    host: {
      qemu: firstLine(await $`qemu-system-x86_64 --version`),
      swtpm: firstLine(await $`swtpm --version`),
      ovmf: firstLine(await $`dpkg-query -W -f=${'${Version}'} ovmf`.nothrow()),
      osslsigncode: firstLine(await $`osslsigncode --version`),
    },
  },
  { spaces: 2 },
);
await fs.writeFile(path.join(out, 'serial-tail.txt'), tail(boot.serialLog, 40) + '\n');
console.log(`wrote ${out}`);
