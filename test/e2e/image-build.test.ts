/**
 * The image builder end to end (npm run test:e2e), with the real mkosi 24 + trixie tools tree: three
 * builds (~4-6 min each warm on a quiet 2-core host; the first one, shared with the node boot
 * test, also builds the tools tree when cold). It proves that two builds from the same lock
 * are bit-identical, that measurements.json is what `sextant measure` computes from the UKI
 * inside the disk image and what trixie's systemd-measure computes for PCR 11, and that a
 * changed kernel command line changes the measurements and is named as `.cmdline`. That
 * second build is signed for Secure Boot (--sb-key/--sb-cert) and exported as an Azure VHD.
 */
import test, { type ExecutionContext } from 'ava';
import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { extractUkiFromDisk } from '../../image-builder/extract-uki.js';
import { parsePe } from '../../measurements/pe/parse.js';
import { sextant } from '../helpers/cli.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { resolveNodeImage } from '../helpers/node-image.js';
import { SB_SIGNING_CERT, SB_SIGNING_KEY } from '../helpers/boot/secureboot.js';

const TOOLS = path.join(REPO_ROOT, '.cache/tools/tools');
let work: string;
let pub: string;
let a: string;
let components: string;

test.before(async () => {
  await run('sh', [path.join(REPO_ROOT, 'scripts/fetch-mkosi.sh')], { timeoutMs: 300_000 });
  work = await mkdtemp(path.join(os.tmpdir(), 'sextant-image-test-'));
});

test.after.always(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** systemd-measure 257 from the tools tree, run with the tree's own loader and libraries. */
async function toolsTreeMeasurePcr11(uki: Buffer, dir: string, phases: string[]): Promise<string> {
  const pe = parsePe(uki);
  const args = ['calculate', '--bank=sha256', `--phase=${phases.join(':')}`];
  for (const s of pe.sections) {
    const name = s.name.replace(/^\./, '');
    if (!['linux', 'osrel', 'cmdline', 'initrd', 'uname', 'sbat', 'splash', 'dtb', 'pcrpkey'].includes(name)) continue;
    const f = path.join(dir, `section-${name}`);
    await writeFile(f, uki.subarray(s.pointerToRawData, s.pointerToRawData + Math.min(s.virtualSize, s.sizeOfRawData)));
    args.push(`--${name}=${f}`);
  }
  const r = await run(path.join(TOOLS, 'usr/lib64/ld-linux-x86-64.so.2'), [
    '--library-path',
    `${path.join(TOOLS, 'usr/lib/x86_64-linux-gnu')}:${path.join(TOOLS, 'usr/lib/x86_64-linux-gnu/systemd')}`,
    path.join(TOOLS, 'usr/lib/systemd/systemd-measure'),
    ...args,
  ]);
  const m = /^11:sha256=([0-9a-f]{64})$/m.exec(r.stdout);
  if (!m) throw new Error(`unexpected systemd-measure output: ${r.stdout}`);
  return m[1];
}

/** What an admin checks on a release folder: sums, signature, and measurements recomputed from the disk image. */
async function checkRelease(t: ExecutionContext, a: string): Promise<void> {
  // Every artifact is what SHA256SUMS says; the signature verifies with openssl.
  const listed = sums(await readFile(path.join(a, 'SHA256SUMS'), 'utf8'));
  for (const [name, digest] of Object.entries(listed)) {
    t.is((await run('sha256sum', [path.join(a, name)])).stdout.split(' ')[0], digest, name);
  }
  const sigDer = path.join(work, 'sig.der');
  await writeFile(sigDer, Buffer.from(await readFile(path.join(a, 'measurements.json.sig'), 'utf8'), 'base64'));
  await run('openssl', ['dgst', '-sha256', '-verify', pub, '-signature', sigDer, path.join(a, 'measurements.json')]);

  // The UKI the firmware boots (from the disk image's ESP) is the UKI artifact, and
  // measurements.json equals sextant measure on it.
  const ukiFromDisk = await extractUkiFromDisk(path.join(a, 'sextant-node.raw'));
  t.true(ukiFromDisk.equals(await readFile(path.join(a, 'sextant-node.efi'))), 'the ESP holds the UKI artifact');
  const extracted = path.join(work, 'from-disk.efi');
  await writeFile(extracted, ukiFromDisk);
  const measured = await sextant(['measure', 'uki', extracted, '--phases', 'enter-initrd,leave-initrd,sysinit,ready', '--json']);
  t.is(measured.exitCode, 0, measured.stderr);
  const prediction = JSON.parse(measured.stdout) as { pcrs: Record<string, string> };
  const file = JSON.parse(await readFile(path.join(a, 'measurements.json'), 'utf8')) as { pcrs: Record<string, { expected: string; enforced: boolean }> };
  for (const pcr of ['4', '9', '11', '12', '13']) {
    t.is(file.pcrs[pcr].expected, prediction.pcrs[pcr], `PCR ${pcr}`);
    t.true(file.pcrs[pcr].enforced);
  }
  t.is(file.pcrs['11'].expected, await toolsTreeMeasurePcr11(ukiFromDisk, work, ['enter-initrd', 'leave-initrd', 'sysinit', 'ready']));
  const verified = await sextant(['measurements', 'verify', '--key', pub, path.join(a, 'measurements.json'), '--image', extracted]);
  t.is(verified.exitCode, 0, verified.stdout + verified.stderr);

}

function sums(text: string): Record<string, string> {
  return Object.fromEntries(text.trim().split('\n').map((l) => l.split(/\s+/).reverse()));
}

test.serial('two builds from one lock are bit-identical, and the measurements are what the UKI in the disk image measures', async (t) => {
  t.timeout(90 * 60_000);
  // The first build is the node image the boot test uses too (built once per source tree,
  // with the kubeadm stand-in as a pinned component and a signing key): one build fewer in CI.
  const t0 = Date.now();
  const image = await resolveNodeImage((l) => t.log(l));
  if (!image.measurementsKey) throw new Error('the node image has no known measurements key (SEXTANT_E2E_MEASUREMENTS_KEY)');
  a = image.dir;
  pub = image.measurementsKey;
  components = path.join(path.dirname(a), 'components.json');
  t.log(`first build: ${image.built ? `${((Date.now() - t0) / 1000).toFixed(0)} s` : 'reused'}`);
  const manifest = JSON.parse(await readFile(path.join(a, 'manifest.json'), 'utf8')) as { components: { name: string; included: boolean }[]; agent: Record<string, string> };
  t.deepEqual(manifest.components.map((c) => [c.name, c.included]), [['kubeadm', true]], 'the pinned component is recorded as included');
  t.truthy(manifest.agent['usr/lib/sextant/sextant.mjs'], 'the agent bundle is recorded');
  await checkRelease(t, a);

  const file = JSON.parse(await readFile(path.join(a, 'measurements.json'), 'utf8')) as { pcrs: Record<string, { expected: string }> };
  const listed = sums(await readFile(path.join(a, 'SHA256SUMS'), 'utf8'));
  // A second clean build from the first one's lock gives the same bytes.
  const t1 = Date.now();
  const again = await sextant(['image', 'reproduce', a, '--components', components, '--json'], { timeoutMs: 40 * 60_000 });
  t.log(again.stderr.split('\n').filter((l) => /^\[/.test(l)).join('\n'));
  t.regex(again.stderr, /mkosi: Installing Debian/, 'progress is shown per stage');
  t.log(`rebuild from the lock: ${((Date.now() - t1) / 1000).toFixed(0)} s`);
  const rep = JSON.parse(again.stdout || '{}') as { reproducible: boolean; artifacts: { name: string; same: boolean }[] };
  t.is(again.exitCode, 0, again.stdout.slice(-3000) + again.stderr.slice(-3000));
  t.true(rep.reproducible, JSON.stringify(rep.artifacts));
  for (const name of ['sextant-node.raw', 'sextant-node.efi', 'measurements.json', 'package-lock.json', 'sextant-node-release.tar']) {
    t.true(rep.artifacts.find((x) => x.name === name)?.same, name);
  }
  t.log(`UKI sha256 ${listed['sextant-node.efi']}; PCR 11 ${file.pcrs['11'].expected}`);
});

test.serial('a changed kernel command line changes the measurements, and verify names PCR 11 and .cmdline', async (t) => {
  t.timeout(60 * 60_000);
  if (!a) return t.fail('needs the first build');
  const config = path.join(work, 'mkosi-changed');
  await cp(path.join(REPO_ROOT, 'mkosi'), config, { recursive: true });
  const conf = path.join(config, 'mkosi.conf');
  const text = await readFile(conf, 'utf8');
  await writeFile(conf, text.replace(/^KernelCommandLine=console=ttyS0 /m, 'KernelCommandLine=console=ttyS1 '));
  const b = path.join(work, 'b');
  // Built without --components: the output and manifest must say the image has no kubeadm.
  // Built signed for Secure Boot (the signing step costs seconds): the release names the signer.
  const built = await sextant(
    ['image', 'build', '--config', config, '--out', b, '--lock', path.join(a, 'package-lock.json'), '--sb-key', SB_SIGNING_KEY, '--sb-cert', SB_SIGNING_CERT, '--json'],
    { timeoutMs: 40 * 60_000 },
  );
  t.is(built.exitCode, 0, built.stderr.slice(-3000));
  t.true((JSON.parse(built.stdout) as { notes: string[] }).notes.some((n) => /no Kubernetes components/.test(n)), 'says the image has no kubeadm/kubelet');
  const bManifest = JSON.parse(await readFile(path.join(b, 'manifest.json'), 'utf8')) as { notes: string[] };
  t.true(bManifest.notes.some((n) => /no Kubernetes components/.test(n)), 'the manifest says so too');
  const v = await sextant(['measurements', 'verify', '--key', pub, path.join(a, 'measurements.json'), '--image', path.join(b, 'sextant-node.efi')]);
  t.is(v.exitCode, 1);
  t.regex(v.stdout + v.stderr, /11/);
  t.regex(v.stdout + v.stderr, /\.cmdline/);
  // Same lock, same agent: `image diff` puts the change on the command line alone (the
  // root without kubeadm has another dm-verity roothash, also on the command line).
  const d = await sextant(['image', 'diff', a, b, '--json']);
  t.is(d.exitCode, 1, d.stderr);
  const diff = JSON.parse(d.stdout) as { packages: unknown[]; components: { name: string }[]; agent: unknown[]; pcrs: { pcr: string; events: { component: string }[] }[] };
  t.deepEqual(diff.packages, []);
  t.deepEqual(diff.components.map((c) => c.name), ['kubeadm'], 'the stand-in kubeadm is in the first build only');
  t.deepEqual(diff.agent, []);
  t.deepEqual(diff.pcrs.find((p) => p.pcr === '11')?.events.map((e) => e.component), ['.cmdline']);
  t.true((diff as unknown as { secureBoot: { name: string; from?: string; to?: string }[] }).secureBoot.some((c) => c.name === 'signed' && c.from === 'false' && c.to === 'true'), 'a unsigned, b signed');

  // The signed build: the ESP holds the signed UKI artifact, osslsigncode accepts it with the db
  // certificate, and the manifest names that certificate.
  const signedEfi = await readFile(path.join(b, 'sextant-node.efi'));
  t.true((await extractUkiFromDisk(path.join(b, 'sextant-node.raw'))).equals(signedEfi), 'the ESP holds the signed UKI');
  const sbVerify = await run('osslsigncode', ['verify', '-in', path.join(b, 'sextant-node.efi'), '-CAfile', SB_SIGNING_CERT], { okExitCodes: [1] });
  t.is(sbVerify.exitCode, 0, sbVerify.stdout.slice(-2000));
  const sb = (JSON.parse(await readFile(path.join(b, 'manifest.json'), 'utf8')) as { secureBoot: { signed: boolean; signer: { sha256Fingerprint: string } } }).secureBoot;
  const fp = (await run('openssl', ['x509', '-in', SB_SIGNING_CERT, '-noout', '-fingerprint', '-sha256'])).stdout.trim().split('=')[1].replace(/:/g, '').toLowerCase();
  t.true(sb.signed);
  t.is(sb.signer.sha256Fingerprint, fp);

  // The Azure VHD of the real disk: qemu-img reads it as vpc with the size rounded to whole MiB.
  const cloud = path.join(work, 'cloud');
  const e = await sextant(['image', 'export', b, '--format', 'azure', '--out', cloud]);
  t.is(e.exitCode, 0, e.stderr);
  const info = JSON.parse((await run('qemu-img', ['info', '-f', 'vpc', '--output=json', path.join(cloud, 'sextant-node-azure.vhd')])).stdout) as { 'virtual-size': number };
  const rawSize = (await stat(path.join(b, 'sextant-node.raw'))).size;
  t.is(info['virtual-size'], Math.ceil(rawSize / 2 ** 20) * 2 ** 20);
});
