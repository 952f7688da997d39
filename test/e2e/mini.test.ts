/**
 * `sextant mini` end to end, as a user runs it (the real CLI as a child process): `mini up
 * --nodes 2 --json` boots two nodes at once under OVMF + swtpm (TCG here), each attests to the
 * key service, formats its LUKS2 state disk in the guest and joins (the image's kubeadm is
 * the strict stand-in: it validates the JoinConfiguration, no Kubernetes runs); `mini status
 * --json` shows both with the PIDs of their processes; `mini down` leaves no process behind,
 * checked by PID and by scanning /proc for anything naming the state folder.
 * SEXTANT_MINI_RECORD=FILE writes the `up` event lines there (test/fixtures/mini/ came from it).
 */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readAuditLog } from '../../mini/keyservice.js';
import type { MiniStatus } from '../../mini/cluster.js';
import type { NodeView } from '../../mini/node-view.js';
import { processStartTicks } from '../../mini/proc.js';
import { sextant } from '../helpers/cli.js';
import { resolveNodeImage } from '../helpers/node-image.js';

const UP_TIMEOUT_MS = 45 * 60_000;

/** Every process whose command line names `dir` (what a leak would look like). */
function processesNaming(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'latin1').split('\0').join(' ');
      if (cmd.includes(dir)) out.push(`${e}: ${cmd.slice(0, 200)}`);
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

let work: string;
let stateDir: string;
let kept = false;

test.before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'sextant-mini-e2e-'));
  stateDir = path.join(work, 'cluster');
});

test.after.always(async () => {
  // Whatever happened above: nothing may keep running.
  await sextant(['mini', 'down', '--dir', stateDir], { timeoutMs: 120_000 });
  if (kept) process.stderr.write(`mini e2e work folder kept: ${work}\n`);
  else await rm(work, { recursive: true, force: true });
});

test.serial('mini up --nodes 2: two attested, joined nodes; status shows them with their PIDs; down leaves no process', async (t) => {
  t.timeout(UP_TIMEOUT_MS + 10 * 60_000);
  const image = await resolveNodeImage((l) => t.log(l));
  const t0 = Date.now();
  const up = await sextant(['mini', 'up', '--nodes', '2', '--image', image.dir, '--dir', stateDir, '--accel', 'auto', '--timeout', '40', '--json'], { timeoutMs: UP_TIMEOUT_MS });
  const seconds = (Date.now() - t0) / 1000;
  const lines = up.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  if (process.env.SEXTANT_MINI_RECORD) await writeFile(process.env.SEXTANT_MINI_RECORD, up.stdout);
  const result = lines.at(-1) as { ok: boolean; accel: string; nodes: NodeView[]; code?: string; message?: string };
  kept = up.exitCode !== 0;
  t.is(up.exitCode, 0, `mini up failed: ${result.code}: ${result.message}\n${up.stderr.slice(-3000)}`);
  t.true(result.ok);

  // The event stream: one line per change, each node seen through its phases in order.
  const events = lines.filter((l) => l.event === 'node') as unknown as NodeView[];
  for (const name of ['node-1', 'node-2']) {
    const phases = [...new Set(events.filter((e) => e.name === name).map((e) => e.phase))];
    t.deepEqual(phases.filter((p) => ['firmware', 'kernel', 'system', 'agent'].includes(p)), ['firmware', 'kernel', 'system', 'agent'], `${name}: ${phases.join(' ')}`);
  }

  const m = JSON.parse(await readFile(path.join(image.dir, 'measurements.json'), 'utf8')) as { pcrs: Record<string, { expected: string; enforced?: boolean }> };
  const enforced = Object.entries(m.pcrs).filter(([, p]) => p.enforced !== false).map(([k]) => Number(k)).sort((a, b) => a - b);
  for (const v of result.nodes) {
    t.is(v.state, 'done', JSON.stringify(v));
    t.true(v.attested, v.name);
    t.deepEqual(v.attestedPcrs, enforced, `${v.name}: every enforced PCR matched`);
    t.is(v.disk, 'formatted', v.name);
    t.true(v.joined, v.name);
    t.is(v.joinedBy, 'kubeadm join', `${v.name}: a first join runs kubeadm join (the stand-in)`);
  }

  // Independently of the table: the key service released to two different disks, each quote
  // holding the measured values.
  const status = JSON.parse((await sextant(['mini', 'status', '--dir', stateDir, '--json'])).stdout) as MiniStatus;
  const audit = await readAuditLog(status.keyservice.auditLog!);
  const releases = audit.filter((a) => a.decision === 'release');
  t.is(new Set(releases.map((r) => r.diskUuid)).size, 2, JSON.stringify(releases.map((r) => r.diskUuid)));
  for (const r of releases) for (const pcr of enforced) t.is((r.pcrs as Record<string, string>)[pcr], m.pcrs[pcr].expected.toLowerCase(), `PCR ${pcr}`);

  // status --json: both nodes, live PIDs of qemu and swtpm, the key service's.
  t.deepEqual(status.nodes.map((n) => n.name).sort(), ['node-1', 'node-2']);
  const pids: { pid: number; ticks: number | undefined; what: string }[] = [];
  for (const n of status.nodes) {
    t.true(n.attested && n.joined && n.disk === 'formatted', JSON.stringify(n));
    for (const [what, pid] of [['qemu-system-x86_64', n.pids.qemu], ['swtpm', n.pids.swtpm]] as const) {
      t.true(Number.isInteger(pid), `${n.name} ${what} PID`);
      t.true(readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(what), `${n.name}: PID ${pid} is ${what}`);
      pids.push({ pid: pid!, ticks: processStartTicks(pid!), what: `${n.name} ${what}` });
    }
  }
  t.true(status.keyservice.running);
  pids.push({ pid: status.keyservice.pid!, ticks: processStartTicks(status.keyservice.pid!), what: 'key service' });

  // Figures for docs/mini.md: time to all joined, and the agent's share of each node's boot.
  const joined = Math.max(...result.nodes.map((v) => v.milestones.joined ?? NaN));
  const share = result.nodes.map((v) => `${v.name} joined at ${v.milestones.joined?.toFixed(0)} s, agent ${(v.milestones.agent ?? 0).toFixed(0)}->${v.milestones.joined?.toFixed(0)} s (${((100 * ((v.milestones.joined ?? 0) - (v.milestones.agent ?? 0))) / (v.milestones.joined ?? 1)).toFixed(0)} %)`);
  t.log(`mini up --nodes 2 (${result.accel}): ${seconds.toFixed(0)} s in all, last node joined ${joined.toFixed(0)} s after its qemu start; ${share.join('; ')}`);

  const down = await sextant(['mini', 'down', '--dir', stateDir, '--json']);
  t.is(down.exitCode, 0, down.stderr);
  const stopped = JSON.parse(down.stdout) as { stopped: { what: string; pid: number; outcome: string }[]; removed: boolean };
  t.true(stopped.removed);
  for (const p of pids) {
    const now = processStartTicks(p.pid);
    t.true(now === undefined || now !== p.ticks, `${p.what} (PID ${p.pid}) still runs after mini down`);
  }
  t.deepEqual(processesNaming(stateDir), [], 'no process names the state folder');
});
