/**
 * The boot agent's critical path, start to "done", on a blank state disk (the join path):
 * swtpm, `sextant keyservice` on loopback, real cryptsetup on an image file (no device-mapper
 * here: deviceMapper=false, so no open/mkfs/mount), the kubeadm stand-in.
 *
 *   1. in process, instrumented: runAgent() wall time vs the time spent outside the agent's
 *      own code (every external command, every TPM call, the key service round trips,
 *      the inventory). Overhead = the difference: what the agent itself costs.
 *   2. as the unit runs it, `sextant agent run` in a child process under /usr/bin/time:
 *      wall time and peak RSS, side by side with a bare `node -e ''` and `sextant --help`
 *      (and, with BENCH_BASELINE_BIN, the same for another build, interleaved).
 * Each run gets a fresh image and status file, and the swtpm is power-cycled so PCR 15 is
 * zero again (a real boot).
 */
import { spawnKeyService, type KeyServiceChild } from '../test/helpers/keyservice-process.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run, type ExecResult } from '../lib/exec.js';
import { runAgent } from '../agent/run/machine.js';
import { productionDeps } from '../agent/run/production.js';
import type { AgentDeps, AgentTpm } from '../agent/run/deps.js';
import { makeClusterCa } from '../test/helpers/cluster-ca.js';
import { measurementsKeys, writeSignedMeasurements } from '../test/helpers/keyservice-fixture.js';
import { FIXTURES, SEXTANT_BIN } from '../test/helpers/paths.js';
import { rebootSwtpm, startSwtpm } from '../test/helpers/swtpm.js';
import { median, report } from './harness.js';

const RUNS = Number(process.env.BENCH_AGENT_RUNS ?? 5);
const DISK = 'b1e2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const MiB = 1024 * 1024;

const swtpm = await startSwtpm();
const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-bench-agent-'));
let service: KeyServiceChild | undefined;
try {
  const keys = await measurementsKeys(dir);
  const measurements = path.join(dir, 'measurements.json');
  await writeSignedMeasurements(measurements, keys.keyPem, { '4': { expected: '00'.repeat(32), enforced: true } });
  const ca = await makeClusterCa(dir);
  const ksConfig = path.join(dir, 'keyservice.json');
  await writeFile(ksConfig, JSON.stringify({
    stateDir: path.join(dir, 'state'), measurements, measurementsKey: keys.pubPem, ekCa: [swtpm.caCertPath, swtpm.issuerCertPath],
    join: { apiServerEndpoint: '10.0.0.1:6443', caCert: ca.caCert, caKey: ca.caKey, tokenTtlSeconds: 600, certDays: 1 },
  }));
  service = await spawnKeyService(['--config', ksConfig, '--listen', '127.0.0.1:0']);
  const started = service;

  /** A fresh node: blank image, new status file, PCRs reset. */
  async function freshNode(i: number): Promise<string> {
    // An orderly shutdown first: an unorderly one counts as a dictionary-attack failure and a
    // few of them lock the TPM out (as on real hardware).
    await run('tpm2_shutdown', ['-c'], { env: swtpm.env });
    await rebootSwtpm(swtpm);
    const img = path.join(dir, `state-${i}.img`);
    await rm(img, { force: true });
    await writeFile(img, '');
    await run('truncate', ['-s', String(48 * MiB), img]);
    const cfg = path.join(dir, `agent-${i}.json`);
    await writeFile(cfg, JSON.stringify({
      keyservice: { url: started.listening, fingerprint: started.fingerprint },
      node: { name: `bench-${i}` },
      stateDisk: { device: img, diskUuid: DISK, deviceMapper: false, mountpoint: path.join(dir, `mnt-${i}`), bindMounts: [] },
      tpm: { tcti: swtpm.tcti },
      join: { kubeadm: path.join(FIXTURES, 'kubeadm-standin/kubeadm'), configPath: path.join(dir, `run-${i}/join.yaml`), kubeletPkiDir: path.join(dir, `pki-${i}`), startKubelet: ['true'] },
      statusFile: path.join(dir, `status-${i}.json`),
    }));
    return cfg;
  }

  // ---- 1. in process, instrumented ----
  const totals: number[] = [];
  const externals: number[] = [];
  const perStep = new Map<string, number[]>();
  for (let i = 0; i < RUNS; i++) {
    const cfg = await freshNode(i);
    let external = 0;
    const timed = async <T>(p: Promise<T>): Promise<T> => {
      const t0 = process.hrtime.bigint();
      try {
        return await p;
      } finally {
        external += Number(process.hrtime.bigint() - t0) / 1e6;
      }
    };
    const base = productionDeps({ configFile: cfg, log: (r) => r.outcome === 'done' && typeof r.ms === 'number' && perStep.set(String(r.step), [...(perStep.get(String(r.step)) ?? []), r.ms]), debug: () => {} });
    const timedRunner = (r: AgentDeps['exec']): AgentDeps['exec'] => (cmd, args, o) => timed<ExecResult>(r(cmd, args, o));
    const disk = base.disk;
    const deps: AgentDeps = {
      ...base,
      // Only the recovery-free path is measured; inventory (lsblk) spawns a tool.
      inventory: () => timed(base.inventory()),
      exec: timedRunner(base.exec),
      disk: {
        blockDevices: () => timed(disk.blockDevices()),
        classify: (d) => timed(disk.classify(d)),
        prepare: (o) => timed(disk.prepare(o)),
        keyOpens: (d, k) => timed(disk.keyOpens(d, k)),
        close: (m, p) => timed(disk.close(m, p)),
        bindMount: (s, t) => timed(disk.bindMount(s, t)),
      },
      openTpm: async (tcti) => {
        const t = await timed(base.openTpm(tcti));
        const wrapped: AgentTpm = {
          ekCertificate: () => t.ekCertificate(),
          akPublic: () => t.akPublic(),
          activateCredential: (a, b) => t.activateCredential(a, b),
          quote: (q) => t.quote(q),
          readPcrSha256: (n) => timed(t.readPcrSha256(n)),
          pcrEvent: (n, d) => timed(t.pcrEvent(n, d)),
          dispose: () => timed(t.dispose()),
        };
        return wrapped;
      },
      keyService: (c) => {
        const ks = base.keyService(c);
        // A round trip includes its TPM calls (EK cert, AK, ActivateCredential, quote) and TLS.
        return { attestOnce: (t, r) => timed(ks.attestOnce(t, r)), confirmLock: ks.confirmLock && ((t, s) => timed(ks.confirmLock!(t, s))) };
      },
    };
    const t0 = process.hrtime.bigint();
    const r = await runAgent(deps);
    const total = Number(process.hrtime.bigint() - t0) / 1e6;
    if (!r.ok) throw new Error(`agent run failed: ${r.code}: ${r.message}`);
    totals.push(total);
    externals.push(external);
  }
  const overheads = totals.map((t, i) => t - externals[i]);
  report(`agent run in process, join path, median of ${RUNS} (swtpm, loopback key service, cryptsetup on a 48 MiB image)`, [
    { name: 'start -> done (runAgent)', value: median(totals), unit: 'ms' },
    { name: 'external: tools + TPM + key service rounds', value: median(externals), unit: 'ms' },
    { name: 'agent overhead (difference, goal <= 150)', value: median(overheads), unit: 'ms' },
    ...[...perStep].map(([step, ms]) => ({ name: `  step ${step}`, value: median(ms), unit: 'ms' })),
  ]);

  // ---- 2. the CLI process, as the unit runs it ----
  const timeV = async (args: string[]): Promise<{ s: number; kb: number }> => {
    const r = await run('/usr/bin/time', ['-f', '%e %M', ...args], { okExitCodes: [0] });
    const [s, kb] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
    return { s, kb };
  };
  // BENCH_BASELINE_BIN=<another checkout>/bin/sextant.js measures that build too, interleaved
  // run by run with this one, so "before" and "after" share the machine's load.
  const baselineBin = process.env.BENCH_BASELINE_BIN;
  const cli: { s: number; kb: number }[] = [];
  const baseCli: { s: number; kb: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    cli.push(await timeV([process.execPath, SEXTANT_BIN, 'agent', 'run', '--config', await freshNode(100 + i)]));
    if (baselineBin) baseCli.push(await timeV([process.execPath, baselineBin, 'agent', 'run', '--config', await freshNode(200 + i)]));
  }
  const bare: { s: number; kb: number }[] = [];
  const help: { s: number; kb: number }[] = [];
  const baseHelp: { s: number; kb: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    bare.push(await timeV([process.execPath, '-e', '']));
    help.push(await timeV([process.execPath, SEXTANT_BIN, '--help']));
    if (baselineBin) baseHelp.push(await timeV([process.execPath, baselineBin, '--help']));
  }
  const m = (xs: { s: number; kb: number }[], k: 's' | 'kb') => median(xs.map((x) => x[k]));
  report(`sextant agent run as a process (/usr/bin/time), median of ${RUNS}`, [
    { name: 'sextant agent run: wall', value: m(cli, 's') * 1000, unit: 'ms' },
    { name: 'node -e "": wall', value: m(bare, 's') * 1000, unit: 'ms' },
    { name: 'sextant --help: wall', value: m(help, 's') * 1000, unit: 'ms' },
    { name: 'sextant agent run: peak RSS (goal <= 60)', value: m(cli, 'kb') / 1024, unit: 'MiB' },
    { name: 'node -e "": peak RSS', value: m(bare, 'kb') / 1024, unit: 'MiB' },
    { name: 'sextant --help: peak RSS', value: m(help, 'kb') / 1024, unit: 'MiB' },
    { name: 'agent run RSS / bare node RSS', value: m(cli, 'kb') / m(bare, 'kb'), unit: 'x' },
    { name: 'sextant --help wall / bare node wall (goal <= 2)', value: m(help, 's') / m(bare, 's'), unit: 'x' },
  ]);
  if (baselineBin) {
    report(`the same, baseline build ${baselineBin}, interleaved with the runs above`, [
      { name: 'baseline agent run: peak RSS', value: m(baseCli, 'kb') / 1024, unit: 'MiB' },
      { name: 'baseline agent run: wall', value: m(baseCli, 's') * 1000, unit: 'ms' },
      { name: 'baseline sextant --help: wall', value: m(baseHelp, 's') * 1000, unit: 'ms' },
      { name: 'agent run RSS: this / baseline', value: m(cli, 'kb') / m(baseCli, 'kb'), unit: 'x' },
      { name: 'baseline --help wall / bare node wall', value: m(baseHelp, 's') / m(bare, 's'), unit: 'x' },
    ]);
  }
} finally {
  await service?.stop();
  await swtpm.stop();
  await rm(dir, { recursive: true, force: true });
}
