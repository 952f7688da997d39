/**
 * The node image with Secure Boot on (npm run test:e2e): the built image's UKI signed with
 * the test db key (`sextant image sign-uki`) and written back onto a copy of its ESP, booted by
 * OVMF's secure-boot build (SMM) from a variable store `sextant image sb-vars` wrote from a
 * real-world key folder (test PK, test + Microsoft KEK and db certificates, Microsoft's 2021
 * dbx update). The key service enforces a measurements file made with `--sb-keys`, so PCR 7 is
 * enforced: the quote's PCR 7 (and PCR 4 with Secure Boot on) must equal the prediction.
 * The unsigned image is refused by the firmware itself.
 */
import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { certFingerprint } from '../../keyservice/state-dir.js';
import { extractUkiFromDisk } from '../../image-builder/extract-uki.js';
import { agentSteps } from '../helpers/boot-phases.js';
import { realWorldKeyFolder, SB_SIGNING_CERT, SB_SIGNING_KEY, SB_SIGNING_TIME } from '../helpers/boot/secureboot.js';
import { sextant } from '../helpers/cli.js';
import { resolveNodeImage, writeUkiToDisk, type NodeImage } from '../helpers/node-image.js';
import { agentConfigFor, agentDone, bootNode, bootSettled, createNodeMachine, freeLoopbackPort, keyServiceFiles, readAuditLog, startNodeKeyService, type ConsoleLine, type KeyServiceProcess } from '../helpers/node-vm.js';

const BOOT_TIMEOUT_MS = 35 * 60_000;
const progress: string[] = [];
const log = (l: string) => progress.push(`${new Date().toISOString().slice(11, 19)} ${l}`);

let image: NodeImage;
let work: string;
let ks: KeyServiceProcess | undefined;
let failed = false;

test.before(async () => {
  image = await resolveNodeImage(log);
  work = await mkdtemp(path.join(os.tmpdir(), 'sextant-e2e-sb-'));
});
test.afterEach.always((t) => {
  if (!t.passed) failed = true;
});
test.after.always(async () => {
  await ks?.stop();
  if (failed) process.stderr.write(`e2e Secure Boot work folder kept for inspection: ${work}\n${progress.slice(-30).join('\n')}\n`);
  else if (work) await rm(work, { recursive: true, force: true });
});

const refusedByFirmware = (lines: readonly ConsoleLine[]) => lines.some((l) => /failed to load Boot\d+ .*: Access Denied/.test(l.text));

test.serial('the signed node image boots with Secure Boot on, attests with PCR 7 enforced, and its quoted PCR 7 and PCR 4 equal the prediction', async (t) => {
  t.timeout(BOOT_TIMEOUT_MS + 10 * 60_000);
  // The signed image: the built UKI, signed, on a copy of the disk.
  const signedRaw = path.join(work, 'signed.raw');
  await run('cp', ['--sparse=always', path.join(image.dir, 'sextant-node.raw'), signedRaw], { log });
  const unsignedEfi = path.join(work, 'node.efi');
  await writeFile(unsignedEfi, await extractUkiFromDisk(signedRaw, log));
  const signedEfi = path.join(work, 'node.signed.efi');
  const s = await sextant(['image', 'sign-uki', unsignedEfi, '--key', SB_SIGNING_KEY, '--cert', SB_SIGNING_CERT, '--time', String(SB_SIGNING_TIME), '--out', signedEfi]);
  t.is(s.exitCode, 0, s.stderr);
  await writeUkiToDisk(signedRaw, signedEfi, log);

  const { keys } = await realWorldKeyFolder(work);
  const vars = path.join(work, 'VARS.fd');
  t.is((await sextant(['image', 'sb-vars', '--keys', keys, '--out', vars])).exitCode, 0);

  // Measurements of the signed UKI with PCR 7 from the key folder, in the image's boot assumptions.
  const imageMeasurements = JSON.parse(await readFile(path.join(image.dir, 'measurements.json'), 'utf8')) as { boot?: { pcrPhases?: string[] }; image: { name: string; version: string } };
  const mdir = path.join(work, 'measurements');
  await mkdir(mdir);
  const create = await sextant([
    'measurements', 'create', '--uki', signedEfi, '--sb-keys', keys, '--out', path.join(mdir, 'measurements.json'),
    '--name', imageMeasurements.image.name, '--image-version', imageMeasurements.image.version,
    ...(imageMeasurements.boot?.pcrPhases ? ['--phases', imageMeasurements.boot.pcrPhases.join(',')] : []),
  ]);
  t.is(create.exitCode, 0, create.stderr);
  const expected = JSON.parse(await readFile(path.join(mdir, 'measurements.json'), 'utf8')) as { pcrs: Record<string, { expected: string; enforced: boolean }> };
  t.true(expected.pcrs['7']?.enforced, 'PCR 7 is enforced');

  const files = await keyServiceFiles(mdir, path.join(work, 'keyservice'), { log });
  const machine = await createNodeMachine({ image: signedRaw, dir: path.join(work, 'machine'), secureBootVars: vars, log });
  const port = await freeLoopbackPort();
  const stateDir = path.join(work, 'keyservice', 'state');
  ks = await startNodeKeyService(machine, { port, stateDir, files, log });
  const fingerprint = certFingerprint(await readFile(files.tlsCert));
  const boot = await bootNode({
    machine,
    keyServicePort: port,
    agentConfig: agentConfigFor(fingerprint),
    serialLog: path.join(work, 'boot-sb.log'),
    timeoutMs: BOOT_TIMEOUT_MS,
    until: (lines) => agentDone(lines) || bootSettled(lines) || refusedByFirmware(lines),
    log,
  });
  t.log(`Secure Boot boot: ${boot.reason} after ${boot.seconds.toFixed(0)} s`);
  t.false(refusedByFirmware(boot.lines), 'the firmware accepted the signed UKI');
  const audit = await readAuditLog(path.join(stateDir, 'audit.log'));
  const release = audit.find((a) => a.decision === 'release');
  t.truthy(release, `no release: ${JSON.stringify(audit.map((a) => [a.decision, a.code, a.reason]))}\n${boot.lines.slice(-40).map((l) => l.text).join('\n')}`);
  const quoted = (release?.pcrs ?? {}) as Record<string, string>;
  t.is(quoted['7'], expected.pcrs['7'].expected, 'PCR 7 quoted by the TPM = predicted from the key folder and the UKI signer');
  t.is(quoted['4'], expected.pcrs['4'].expected, 'PCR 4 with Secure Boot on = predicted');
  t.true(agentDone(boot.lines), 'the agent finished');
});

test.serial('the unsigned node image is refused by the firmware with Secure Boot on (Access Denied on the console)', async (t) => {
  t.timeout(BOOT_TIMEOUT_MS);
  const vars = path.join(work, 'VARS.fd');
  const machine = await createNodeMachine({ image: path.join(image.dir, 'sextant-node.raw'), dir: path.join(work, 'machine-unsigned'), secureBootVars: vars, log });
  const boot = await bootNode({
    machine,
    keyServicePort: await freeLoopbackPort(),
    agentConfig: agentConfigFor('sha256:' + '0'.repeat(64)),
    serialLog: path.join(work, 'boot-unsigned.log'),
    timeoutMs: 15 * 60_000,
    until: (lines) => refusedByFirmware(lines) || bootSettled(lines) || agentSteps(lines).length > 0,
    log,
  });
  t.true(refusedByFirmware(boot.lines), `the firmware did not refuse:\n${boot.lines.slice(-20).map((l) => l.text).join('\n')}`);
  t.is(agentSteps(boot.lines).length, 0, 'nothing of the image ran');
});
