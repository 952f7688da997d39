#!/usr/bin/env node
// Regenerates test/fixtures/boots/<name>/ from real measured boots (qemu TCG + OVMF + swtpm):
// builds each capture UKI (test/helpers/boot/capture-uki.ts), boots it, and writes what the
// guest read: the firmware event log, every PCR of every bank, and what went into the UKI.
//
//   node scripts/boot/capture-fixtures.mjs [recipe-name...]     (default: all recipes)
//
// The trixie (systemd 257) and sid (262) stubs and sid's ukify are fetched into .cache/ with a
// private apt state (scripts/fetch-trixie-stub.sh, scripts/fetch-debian-package.sh).
import { $, fs, path } from 'zx';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
$.cwd = root;
$.verbose = false;
await $`npx tsc -p tsconfig.json`;
const { CAPTURE_RECIPES, buildCaptureUki } = await import(`${root}/dist/test/helpers/boot/capture-uki.js`);
const { bootAndCapture, tail } = await import(`${root}/dist/test/helpers/qemu.js`);
const { readTcgLog, describeEventData } = await import(`${root}/dist/test/helpers/boot/tcg-log-oracle.js`);

const wanted = process.argv.slice(2);
const recipes = CAPTURE_RECIPES.filter((r) => wanted.length === 0 || wanted.includes(r.name));
if (recipes.length === 0) throw new Error(`no recipe named ${wanted.join(', ')}`);

const firstLine = (s) => String(s).split('\n')[0].trim();
const tools = {
  qemu: firstLine(await $`qemu-system-x86_64 --version`),
  swtpm: firstLine(await $`swtpm --version`),
  ovmf: firstLine(await $`dpkg-query -W -f=${'${Version}'} ovmf`.nothrow()),
};

for (const recipe of recipes) {
  const ukiPath = path.join(root, '.cache/boots', `${recipe.name}.efi`);
  await fs.mkdirp(path.dirname(ukiPath));
  const uki = await buildCaptureUki(recipe, ukiPath);
  console.log(`${recipe.name}: UKI ${uki.recipe.uki.sha256} (${uki.recipe.stub.version}), booting...`);
  const cap = await bootAndCapture({ efiBinary: ukiPath, timeoutMs: 600_000, log: (l) => process.env.VERBOSE && console.error(l) });
  console.log(`${recipe.name}: boot took ${cap.bootSeconds.toFixed(1)} s`);

  const out = path.join(root, 'test/fixtures/boots', recipe.name);
  await fs.mkdirp(out);
  await fs.writeFile(path.join(out, 'eventlog.bin'), cap.eventlog);
  await fs.writeJson(path.join(out, 'pcrs.json'), { banks: cap.pcrs }, { spaces: 2 });
  // What the boot chain measured into the PCRs a UKI precompute predicts (and PCR 5, which the
  // firmware extends between them), in log order, read by the test helpers' independent reader.
  const measured = readTcgLog(cap.eventlog)
    .map((e, index) => ({ index, pcr: e.pcr, type: e.type, sha256: e.digests.sha256, description: describeEventData(e) }))
    .filter((e) => [4, 5, 9, 11, 12, 13].includes(e.pcr));
  await fs.writeJson(
    path.join(out, 'boot.json'),
    {
      name: recipe.name,
      capturedAt: new Date().toISOString(),
      bootSeconds: Math.round(cap.bootSeconds * 10) / 10,
      uki: uki.recipe,
      guest: { cmdline: cap.cmdline, kernelRelease: cap.kernelRelease, extraListing: cap.extraListing },
      host: tools,
      measured,
    },
    { spaces: 2 },
  );
  await fs.writeFile(path.join(out, 'serial-tail.txt'), `${tail(cap.serialLog, 40)}\n`);
  console.log(`${recipe.name}: fixtures written to ${path.relative(root, out)}`);
}
