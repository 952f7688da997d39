/**
 * The whole chain on real boots (npm run test:e2e): the built node image boots under OVMF +
 * swtpm in qemu (TCG), its agent attests to `sextant keyservice` on the host's loopback,
 * formats and opens its state disk with real dm-crypt in the guest, locks PCR 15 and joins
 * (kubeadm stand-in). Three boots of one machine, shared between the assertions of issue 7:
 *
 *   boot 1  blank state disk, key service started only after the agent's 3rd failed attempt
 *           -> (1) accepted attestation vs measurements.json and the event log, (2) LUKS2 +
 *              marker + join + PCR 15 lock, (5) backoff while the service is down
 *   boot 2  the same disks again -> (3) rejoin, opened not formatted, (3b) PCRs 0-14 equal
 *   boot 3  the image with one byte of .cmdline changed -> (4) refused naming PCR 11 and
 *           .cmdline, state disk bytes unchanged
 *
 * The guest has no shell: what it did is read from the key service's audit log (the quoted,
 * TPM-signed PCRs and the firmware event log it verified), the agent's JSON step records on
 * the serial console, and the state disk image on the host (cryptsetup, openssl). Each boot
 * takes minutes under TCG; SEXTANT_E2E_IMAGE_DIR=DIR reuses a built image.
 */
import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { certFingerprint } from '../../keyservice/state-dir.js';
import { agentSteps, bootTimeline, formatTimeline, type AgentStep } from '../helpers/boot-phases.js';
import { opensslHkdf } from '../helpers/keyservice-fixture.js';
import { copyPartitionHead, diskSha256, resolveNodeImage, tamperCmdline, type NodeImage } from '../helpers/node-image.js';
import {
  agentConfigFor,
  agentDone,
  agentStderrDropIn,
  bootNode,
  bootSettled,
  createNodeMachine,
  freeLoopbackPort,
  keyServiceFiles,
  readAuditLog,
  startNodeKeyService,
  type AuditRecordLike,
  type BootResult,
  type KeyServiceFiles,
  type KeyServiceProcess,
  type NodeMachine,
} from '../helpers/node-vm.js';

/** A boot under TCG on a loaded 2-core host: 3-10 min; the hard limit per boot. */
const BOOT_TIMEOUT_MS = 35 * 60_000;
/** The key service comes up only after this many failed attempts of the agent (assertion 5). */
const RETRIES_BEFORE_START = 3;
const STATE_PART_UUID = '5e7a7e00-0000-4000-8000-000000000002';

interface BootRecord {
  boot: BootResult;
  steps: AgentStep[];
  audit: AuditRecordLike[];
}

const progress: string[] = [];
const log = (l: string) => progress.push(`${new Date().toISOString().slice(11, 19)} ${l}`);

let image: NodeImage;
let work: string;
let machine: NodeMachine;
let files: KeyServiceFiles;
let port: number;
let fingerprint: string;
let ks: KeyServiceProcess | undefined;
let failed = false;
const boots: { first?: BootRecord; second?: BootRecord; tampered?: BootRecord & { stateBefore: string; stateAfter: string; cmdline: { before: string; after: string } } } = {};

test.before(async () => {
  image = await resolveNodeImage(log);
  work = await mkdtemp(path.join(os.tmpdir(), 'sextant-e2e-'));
  machine = await createNodeMachine({ image: path.join(image.dir, 'sextant-node.raw'), dir: path.join(work, 'machine'), log });
  files = await keyServiceFiles(image.dir, path.join(work, 'keyservice'), { measurementsKey: image.measurementsKey, log });
  fingerprint = certFingerprint(await readFile(files.tlsCert));
  port = await freeLoopbackPort();
});

test.afterEach.always((t) => {
  if (!t.passed) failed = true;
});

test.after.always(async () => {
  await ks?.stop();
  if (failed) process.stderr.write(`e2e work folder kept for inspection: ${work}\n`);
  else if (work) await rm(work, { recursive: true, force: true });
});

function startKeyService(): Promise<KeyServiceProcess> {
  return startNodeKeyService(machine, { port, stateDir: path.join(work, 'keyservice', 'state'), files, log }).then((k) => (ks = k));
}

const isStep = (s: AgentStep, step: string, outcome?: string) => s.record.step === step && (outcome === undefined || s.record.outcome === outcome);

function consoleTail(b: BootResult, n = 60): string {
  return b.lines
    .filter((l) => !/Job .* running \(/.test(l.text))
    .slice(-n)
    .map((l) => `${l.t.toFixed(1).padStart(7)} | ${l.text}`)
    .join('\n');
}

function report(t: ExecutionContext, name: string, b: BootResult): void {
  t.log(`${name}: ${b.reason} after ${b.seconds.toFixed(0)} s (settled at ${b.untilSeconds?.toFixed(0) ?? '-'} s)\n${formatTimeline(bootTimeline(b.lines))}`);
}

async function auditSince(seq: number): Promise<AuditRecordLike[]> {
  return (await readAuditLog(path.join(work, 'keyservice', 'state', 'audit.log'))).filter((r) => r.seq >= seq);
}

async function auditLength(): Promise<number> {
  return (await readAuditLog(path.join(work, 'keyservice', 'state', 'audit.log'))).length;
}

function need<T>(x: T | undefined, what: string): T {
  if (x === undefined) throw new Error(`${what} (see the boot test's log)`);
  return x;
}

const releases = (r: BootRecord) => r.audit.filter((a) => a.decision === 'release');
const pcrsOf = (a: AuditRecordLike) => a.pcrs as Record<string, string>;
/** The post-lock round: the key service's record of a quote that includes PCR 15 = lock. */
const confirmOf = (r: BootRecord) => r.audit.find((a) => /confirm/.test(a.decision) && a.pcrs !== undefined);

/** PCR 15 after TPM2_PCR_Event(clusterID): H(0^32 || H(clusterID)), computed here with node:crypto. */
function expectedLock(clusterIdHex: string): string {
  const inner = createHash('sha256').update(Buffer.from(clusterIdHex, 'hex')).digest();
  return createHash('sha256').update(Buffer.alloc(32)).update(inner).digest('hex');
}

// ---- boot 1 ----

test.serial('boot 1: blank state disk, key service down until the agent has retried; the boot settles and its phases are timed', async (t) => {
  t.timeout(BOOT_TIMEOUT_MS + 5 * 60_000);
  let starting: Promise<KeyServiceProcess> | undefined;
  const boot = await bootNode({
    machine,
    keyServicePort: port,
    agentConfig: agentConfigFor(fingerprint, { retry: { initialMs: 2000, maxMs: 30_000 } }),
    serialLog: path.join(work, 'boot1.log'),
    timeoutMs: BOOT_TIMEOUT_MS,
    onLine: (_l, all) => {
      if (starting) return;
      const retries = agentSteps(all).filter((s) => isStep(s, 'attest', 'retrying'));
      if (retries.length >= RETRIES_BEFORE_START) {
        log(`agent retried ${retries.length} times: starting the key service`);
        starting = startKeyService();
      }
    },
    until: (lines) => agentDone(lines) || bootSettled(lines),
    credentials: process.env.SEXTANT_E2E_DEBUG ? agentStderrDropIn() : undefined,
    log,
  });
  if (starting) await starting;
  boots.first = { boot, steps: agentSteps(boot.lines), audit: await auditSince(0) };
  report(t, 'boot 1', boot);
  t.not(boot.reason, 'timeout', `boot 1 did not settle:\n${consoleTail(boot)}`);
  t.truthy(starting, `the agent never logged ${RETRIES_BEFORE_START} failed attempts:\n${consoleTail(boot)}\n${progress.slice(-20).join('\n')}`);
  t.true(agentDone(boot.lines), `the agent did not finish:\n${consoleTail(boot)}`);
});

test.serial('(1) the accepted attestation quoted PCRs 4, 9, 11, 12, 13 equal to measurements.json, and firmware PCRs equal to the event log replay (tpm2_eventlog)', async (t) => {
  const first = need(boots.first, 'boot 1 did not run');
  const release = need(releases(first)[0], `no accepted attestation in the audit log: ${JSON.stringify(first.audit.map((a) => [a.decision, a.code, a.reason]))}`);
  const quoted = pcrsOf(release);
  const m = JSON.parse(await readFile(files.measurements, 'utf8')) as { pcrs: Record<string, { expected: string }> };
  for (const pcr of ['4', '9', '11', '12', '13']) t.is(quoted[pcr], m.pcrs[pcr].expected.toLowerCase(), `PCR ${pcr}`);
  // Independent replay of the log the key service verified.
  const logFile = path.join(work, 'boot1-eventlog.bin');
  await writeFile(logFile, Buffer.from(String(release.eventLog), 'base64'));
  const replay = replayWithTpm2Tools((await run('tpm2_eventlog', [logFile])).stdout);
  for (const pcr of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14]) t.is(quoted[String(pcr)], replay[pcr] ?? '0'.repeat(64), `PCR ${pcr} vs the event log replay`);
});

/** `pcrs: sha256: N : 0x...` from tpm2_eventlog's YAML. */
function replayWithTpm2Tools(yaml: string): Record<number, string> {
  const out: Record<number, string> = {};
  const bank = yaml.split(/^\s*sha256:\s*$/m)[1] ?? '';
  for (const line of bank.split('\n')) {
    const m = /^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]{64})\s*$/.exec(line);
    if (m) out[Number(m[1])] = m[2].toLowerCase();
    else if (/^\s*\w+:\s*$/.test(line)) break;
  }
  return out;
}

test.serial('(2) the agent formatted the state disk with LUKS2 under the released key, opened and marked it, joined with a valid JoinConfiguration, and PCR 15 holds the cluster lock', async (t) => {
  const first = need(boots.first, 'boot 1 did not run');
  const disk = need(first.steps.find((s) => isStep(s, 'disk', 'done')), 'no disk step in the console').record;
  t.is(disk.state, 'formatted', JSON.stringify(disk));
  t.is(disk.marker, 'written', JSON.stringify(disk));
  // On the host: the header is LUKS2 with the allowed parameters, and opens with
  // HKDF(master secret, salt, "key-" + partition UUID) computed by openssl.
  const hdr = path.join(work, 'state-header.img');
  await copyPartitionHead(machine.stateDisk, hdr);
  const dump = JSON.parse((await run('cryptsetup', ['luksDump', '--dump-json-metadata', hdr])).stdout) as { segments: Record<string, { encryption: string; sector_size: number }> };
  t.is(dump.segments['0'].encryption, 'aes-xts-plain64');
  t.is(dump.segments['0'].sector_size, 4096);
  const state = path.join(work, 'keyservice', 'state');
  const key = await opensslHkdf(await readFile(path.join(state, 'master-secret')), await readFile(path.join(state, 'salt')), `key-${STATE_PART_UUID}`);
  const opened = await run('cryptsetup', ['open', '--test-passphrase', '--key-file', '-', hdr], { input: Buffer.from(key, 'hex'), okExitCodes: [0, 1, 2] });
  t.is(opened.exitCode, 0, `the released key does not open the header: ${opened.stderr}`);
  // kubeadm (the stand-in, which refuses anything but a valid v1beta4 JoinConfiguration) ran.
  const join = need(first.steps.find((s) => isStep(s, 'join', 'done')), 'no join step in the console').record;
  t.regex(JSON.stringify(join), /kubeadm-join/, JSON.stringify(join));
  const lock = expectedLock(need(ks, 'no key service').clusterId);
  const confirm = need(confirmOf(first), 'no post-lock (confirm) record in the audit log');
  t.is(pcrsOf(confirm)['15'], lock, 'PCR 15 in the final quote');
});

test.serial('(5) with the key service down the agent retries with growing intervals (no spinning) and succeeds once it is up', (t) => {
  const first = need(boots.first, 'boot 1 did not run');
  const retries = first.steps.filter((s) => isStep(s, 'attest', 'retrying')).map((s) => Number(s.record.delayMs));
  t.true(retries.length >= RETRIES_BEFORE_START, `retries: ${JSON.stringify(retries)}`);
  for (let i = 1; i < RETRIES_BEFORE_START; i++) t.true(retries[i] > retries[i - 1] * 1.2, `delays grow: ${JSON.stringify(retries)}`);
  t.true(retries.every((d) => d >= 1000 && d <= 30_000 * 1.25), `delays stay within [initial, max]: ${JSON.stringify(retries)}`);
  const attested = need(first.steps.find((s) => isStep(s, 'attest', 'done')), 'attest never succeeded').record;
  t.true(Number(attested.attempts) > RETRIES_BEFORE_START, JSON.stringify(attested));
});

// ---- boot 2 ----

test.serial('boot 2 of the same disks: (3) rejoin, the state disk opened (not formatted) with its marker; (3b) PCRs 0-14 equal to boot 1, PCR 15 the lock', async (t) => {
  t.timeout(BOOT_TIMEOUT_MS + 5 * 60_000);
  need(boots.first, 'boot 1 did not run');
  const ksNow = need(ks, 'the key service never started in boot 1');
  const hdr1 = path.join(work, 'state-header-1.img');
  await copyPartitionHead(machine.stateDisk, hdr1);
  const seq = await auditLength();
  const boot = await bootNode({
    machine,
    keyServicePort: port,
    agentConfig: agentConfigFor(fingerprint),
    serialLog: path.join(work, 'boot2.log'),
    timeoutMs: BOOT_TIMEOUT_MS,
    until: (lines) => agentDone(lines) || bootSettled(lines),
    log,
  });
  const second: BootRecord = { boot, steps: agentSteps(boot.lines), audit: await auditSince(seq) };
  boots.second = second;
  report(t, 'boot 2', boot);
  t.true(agentDone(boot.lines), `the agent did not finish:\n${consoleTail(boot)}`);
  const release = need(releases(second)[0], `no accepted attestation in boot 2: ${JSON.stringify(second.audit.map((a) => [a.decision, a.code, a.reason]))}`);
  t.is(release.role, 'rejoin');
  const disk = need(second.steps.find((s) => isStep(s, 'disk', 'done')), 'no disk step').record;
  t.is(disk.state, 'opened', JSON.stringify(disk));
  t.is(disk.marker, 'present', JSON.stringify(disk));
  const join = second.steps.find((s) => isStep(s, 'join', 'done'))?.record;
  t.notRegex(JSON.stringify(join ?? {}), /kubeadm-join/, 'a rejoin does not run kubeadm join');
  // Not re-formatted: the LUKS2 header and keyslots are the bytes boot 1 left.
  const hdr2 = path.join(work, 'state-header-2.img');
  await copyPartitionHead(machine.stateDisk, hdr2);
  t.is(await diskSha256(hdr2), await diskSha256(hdr1), 'LUKS header unchanged by the rejoin');
  // (3b) the image writes nothing the firmware or the stub measures on the next boot.
  const p1 = pcrsOf(releases(boots.first!)[0]);
  const p2 = pcrsOf(release);
  for (let i = 0; i <= 14; i++) t.is(p2[String(i)], p1[String(i)], `PCR ${i} boot 2 vs boot 1`);
  t.is(pcrsOf(need(confirmOf(second), 'no confirm record in boot 2'))['15'], expectedLock(ksNow.clusterId));
});

// ---- boot 3 ----

test.serial('boot 3, one byte of .cmdline changed (measurements not re-signed): (4) refused naming PCR 11 and .cmdline, the state disk unchanged', async (t) => {
  t.timeout(BOOT_TIMEOUT_MS + 5 * 60_000);
  need(ks, 'the key service never started');
  const tampered = path.join(work, 'tampered.raw');
  const cmdline = await tamperCmdline(image.dir, tampered, log);
  t.log(`cmdline changed: ...${cmdline.after.slice(-40)} (was ...${cmdline.before.slice(-40)})`);
  const stateBefore = await diskSha256(machine.stateDisk);
  const seq = await auditLength();
  const refused = async () => (await auditSince(seq)).some((a) => a.decision === 'refuse' && a.code === 'MEASUREMENTS_MISMATCH');
  const boot = await bootNode({
    machine,
    bootDisk: tampered,
    keyServicePort: port,
    agentConfig: agentConfigFor(fingerprint),
    serialLog: path.join(work, 'boot3.log'),
    timeoutMs: BOOT_TIMEOUT_MS,
    until: async (lines) => (await refused()) || agentDone(lines),
    log,
  });
  const stateAfter = await diskSha256(machine.stateDisk);
  report(t, 'boot 3 (tampered)', boot);
  const audit = await auditSince(seq);
  t.is(audit.filter((a) => a.decision === 'release').length, 0, 'no key released to the tampered boot');
  const refusal = need(audit.find((a) => a.decision === 'refuse' && a.code === 'MEASUREMENTS_MISMATCH'), `no refusal: ${JSON.stringify(audit.map((a) => [a.decision, a.code]))}\n${consoleTail(boot)}`);
  t.regex(String(refusal.reason), /PCR 11\b/);
  t.regex(String(refusal.reason), /\.cmdline/);
  const mismatches = refusal.mismatches as { pcr: number }[];
  t.true(mismatches.some((m) => m.pcr === 11), JSON.stringify(mismatches));
  const named = refusal.changedComponents as { pcr: number; component: string }[];
  t.true(named.some((c) => c.pcr === 11 && c.component === '.cmdline'), JSON.stringify(named));
  t.is(stateAfter, stateBefore, 'the state disk image is byte for byte unchanged');
  t.false(agentDone(boot.lines), 'the agent did not finish on a refused boot');
});
