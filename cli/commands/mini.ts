import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { bool, str, type CommandSpec } from '../command.js';
import { fail } from '../../lib/errors.js';
import { MiniCluster, readMiniStatus, type DownResult, type MiniStatus } from '../../mini/cluster.js';
import type { NodeView } from '../../mini/node-view.js';
import { readState, DEFAULT_MINI_DIR, nodeSerialLog } from '../../mini/state.js';
import { renderTable } from '../../mini/table.js';
import { miniUp, type UpResult } from '../../mini/up.js';
import { miniApply, type ApplyEvent, type ApplyResult } from '../../mini/apply.js';
import { MINI_CONFIG_LIMITS, MiniConfigError, parseMiniConfig } from '../../mini/reconcile/config.js';
import { describeStep } from '../../mini/reconcile/plan.js';
import { LiveTable } from '../mini-live.js';

// ---- sextant mini up | status | logs | down (docs/mini.md) ----

const DIR = { type: 'string', valueName: 'DIR', description: 'the state folder', default: DEFAULT_MINI_DIR } as const;

function positiveInt(v: string | undefined, name: string, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) fail('USAGE', `--${name} must be an integer 1..${max}, got "${v.slice(0, 20)}"`);
  return n;
}

function keyServiceLine(s: MiniStatus['keyservice']): string {
  return s.running ? `key service: PID ${s.pid} on ${s.url} (cluster ${s.clusterId?.slice(0, 16)}...), audit log ${s.auditLog}` : 'key service: not running';
}

function failureText(v: NodeView): string {
  return [`${v.name} failed: ${v.failure?.reason ?? '?'}`, 'last console lines:', ...(v.failure?.consoleTail ?? []).map((l) => `  | ${l}`)].join('\n');
}

const up: CommandSpec<UpResult> = {
  path: ['mini', 'up'],
  summary: 'boot a local confidential cluster: the key service and N measured nodes under QEMU (OVMF + swtpm), until every node attested and joined',
  description: `
Uses --image DIR (a \`sextant image build\` folder), else the cluster's image, else the cached
build of this checkout in .cache/e2e-image (built with mkosi when the source tree changed:
10-30 min). The image's measurements are signed with a throwaway key the key service trusts.
Nodes boot at once, under KVM when /dev/kvm opens, else TCG (one host thread per node).
Progress is a live table on stderr (one line per change when stderr is not a terminal);
--json prints one JSON line per change on stdout, then the result. Returns when every node is
done or one failed (its reason and last console lines, exit 1); the cluster keeps running
(\`sextant mini status\`, \`mini logs NODE\`, \`mini down\`). Run again, it resumes.
"Joined" means the agent ran kubeadm join with a valid JoinConfiguration: the image holds the
strict kubeadm stand-in (no Kubernetes runs here).`,
  options: {
    nodes: { type: 'string', valueName: 'N', description: 'how many nodes', default: '1' },
    image: { type: 'string', valueName: 'DIR', description: 'boot this image folder (sextant-node.raw, measurements.json)' },
    accel: { type: 'string', description: 'accelerator', choices: ['auto', 'kvm', 'tcg', 'tcg-single'], default: 'auto' },
    timeout: { type: 'string', valueName: 'MINUTES', description: 'per node, from its boot (default 20 under TCG, 5 under KVM)' },
    dir: DIR,
  },
  async run(ctx) {
    const nodes = positiveInt(str(ctx.values, 'nodes'), 'nodes', 16) ?? 1;
    const timeout = positiveInt(str(ctx.values, 'timeout'), 'timeout', 600);
    const table = ctx.json ? undefined : new LiveTable(process.stderr);
    const r = await miniUp({
      dir: str(ctx.values, 'dir') ?? DEFAULT_MINI_DIR,
      nodes,
      image: str(ctx.values, 'image'),
      accel: str(ctx.values, 'accel') as never,
      timeoutMs: timeout === undefined ? undefined : timeout * 60_000,
      signal: ctx.signal,
      log: ctx.json ? undefined : ctx.log,
      onChange: (v) => {
        if (ctx.json) process.stdout.write(JSON.stringify({ event: 'node', ...v }) + '\n');
        else table!.update(v);
      },
    }).finally(() => table?.stop());
    if (r.failed) fail('MINI_NODE_FAILED', `${failureText(r.failed)}\nthe cluster keeps running: sextant mini logs ${r.failed.name}; sextant mini down`);
    return r;
  },
  render: (r) =>
    [
      r.interrupted ? 'interrupted: the cluster keeps running' : `${r.nodes.length} node(s) attested and joined in ${r.seconds.toFixed(0)} s (${r.accel})`,
      keyServiceLine(r.keyservice),
      `state: ${r.dir}; stop with: sextant mini down`,
    ].join('\n'),
  exitCode: (r) => (r.ok ? 0 : 1),
};

const status: CommandSpec<MiniStatus> = {
  path: ['mini', 'status'],
  summary: "each node's boot phase, agent step, attestation (PCRs matched), disk, join, and the PIDs of the cluster's processes",
  description: 'Reads the state folder, the consoles and the key service\'s audit log; changes nothing.',
  options: { dir: DIR },
  run: (ctx) => readMiniStatus(str(ctx.values, 'dir') ?? DEFAULT_MINI_DIR),
  render: (s) =>
    [
      ...(s.nodes.length ? renderTable(s.nodes) : ['no nodes']),
      ...s.nodes.map((n) => `${n.name}: qemu ${n.pids.qemu ?? '-'} swtpm ${n.pids.swtpm ?? '-'}${n.failure ? `; failed: ${n.failure.reason}` : ''}`),
      keyServiceLine(s.keyservice),
    ].join('\n'),
};

const logs: CommandSpec<{ node: string; file: string; lines: string[] }> = {
  path: ['mini', 'logs'],
  summary: "a node's serial console (firmware, kernel, systemd, the agent's step records)",
  args: 'NODE',
  positionals: { min: 1, max: 1 },
  options: { dir: DIR, tail: { type: 'string', valueName: 'N', description: 'only the last N lines' } },
  async run(ctx) {
    const dir = path.resolve(str(ctx.values, 'dir') ?? DEFAULT_MINI_DIR);
    const name = ctx.positionals[0];
    const n = (await readState(dir))?.nodes[name];
    if (!n) fail('USAGE', `no node "${name.slice(0, 40)}" in ${dir}`);
    const file = nodeSerialLog(n);
    // eslint-disable-next-line no-control-regex
    const lines = (await readFile(file, 'latin1').catch(() => '')).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').split(/\r?\n/).filter((l) => l.trim() !== '');
    const tail = positiveInt(str(ctx.values, 'tail'), 'tail', 1_000_000);
    return { node: name, file, lines: tail ? lines.slice(-tail) : lines };
  },
  render: (r) => r.lines.join('\n'),
};

const down: CommandSpec<DownResult & { ok: true }> = {
  path: ['mini', 'down'],
  summary: 'stop every process the mini cluster started (by PID, checked to be the same process) and remove its state',
  description: `
qemu, swtpm and the key service are stopped by the PIDs recorded in the state folder, each
only after checking it is still that process (start time and command line); a PID now used
by another program is left alone. --keep-state powers the nodes off cleanly and keeps the
folder (disks, TPMs, the key service's secrets) for a later \`mini up\`.`,
  options: { dir: DIR, 'keep-state': { type: 'boolean', description: 'keep the state folder' } },
  async run(ctx) {
    const c = await MiniCluster.open({ dir: str(ctx.values, 'dir') ?? DEFAULT_MINI_DIR, log: ctx.log });
    try {
      return { ok: true as const, ...(await c.down({ keepState: bool(ctx.values, 'keep-state') })) };
    } finally {
      await c.close();
    }
  },
  render: (r) =>
    [...r.stopped.map((s) => `${s.what} (PID ${s.pid}): ${s.outcome}`), r.stopped.length ? '' : 'nothing was running', r.removed ? 'state folder removed' : 'state folder kept']
      .filter(Boolean)
      .join('\n'),
};

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MAX_OVERLAP_MS = 30 * 86_400_000;

/** `90s`, `10m`, `2h`, `1d`, `500ms` (at most 30 days). */
export function parseDuration(v: string, name: string): number {
  const m = /^([0-9]{1,9})(ms|s|m|h|d)$/.exec(v);
  const ms = m ? Number(m[1]) * DURATION_UNITS[m[2]] : NaN;
  if (!(ms >= 0 && ms <= MAX_OVERLAP_MS)) fail('INVALID_ARGUMENT', `--${name} must be a duration like 90s, 10m, 2h or 1d (at most 30d), got "${v.slice(0, 20)}"`);
  return ms;
}

/** Reads and checks a mini.yaml / JSON file (MINI_CONFIG_INVALID; FILE_NOT_FOUND when absent). */
export async function readMiniConfig(file: string) {
  const st = await stat(file).catch(() => fail('FILE_NOT_FOUND', `no config file ${file}`));
  if (!st.isFile()) fail('FILE_NOT_FOUND', `${file} is not a file`);
  if (st.size > MINI_CONFIG_LIMITS.bytes) throw new MiniConfigError('too-large', undefined, `${file}: larger than ${MINI_CONFIG_LIMITS.bytes} bytes`);
  return parseMiniConfig(await readFile(file, 'utf8'), file);
}

const apply: CommandSpec<ApplyResult> = {
  path: ['mini', 'apply'],
  summary: 'reconcile the mini cluster with a declared config: load the new image\'s measurements, replace nodes one at a time (the new joins before the old stops), retire the old measurements',
  args: 'FILE',
  description: `
FILE (mini.yaml, or JSON) declares imageVersion, image (a \`sextant image build --out\` folder,
relative to FILE), kubernetesVersion and nodes. apply observes the cluster (nodes with their
image version, the key service's measurement sets), plans and runs the steps: the new image's
measurements, signed with the cluster's throwaway key, are loaded next to the current ones;
each old node is replaced by a node on the new image that must attest and join before the old
one is stopped (by PID); once no node of the old image remains its measurements are retired.
--overlap bounds how long the old measurements stay accepted after the new ones load. A step
that fails stops the run (MINI_APPLY_FAILED): apply again continues from what is there.
Progress as \`mini up\`: a live table on stderr, or one JSON line per change with --json.`,
  options: {
    dir: DIR,
    overlap: { type: 'string', valueName: 'DURATION', description: 'how long the old measurements stay accepted after the new ones load (90s, 10m, 2h, 1d)' },
    timeout: { type: 'string', valueName: 'MINUTES', description: 'per new node, from its boot (default 20 under TCG, 5 under KVM)' },
  },
  async run(ctx) {
    const overlap = str(ctx.values, 'overlap');
    const overlapMs = overlap === undefined ? undefined : parseDuration(overlap, 'overlap');
    const timeout = positiveInt(str(ctx.values, 'timeout'), 'timeout', 600);
    const config = await readMiniConfig(ctx.positionals[0]);
    const table = ctx.json ? undefined : new LiveTable(process.stderr);
    const onEvent = (e: ApplyEvent): void => {
      if (ctx.json) {
        process.stdout.write(JSON.stringify(e.event === 'node' ? { event: 'node', ...e.view } : e) + '\n');
        return;
      }
      if (e.event === 'node') table!.update(e.view);
      else if (e.event === 'plan') table!.note(e.steps.length ? `plan: ${e.steps.length} steps` : 'the cluster is as declared: nothing to do');
      else if (e.status !== 'start' || e.step.kind !== 'wait-joined') {
        table!.note(`[${e.index + 1}/${e.total}] ${describeStep(e.step)}: ${e.status === 'start' ? '...' : e.status}${e.seconds !== undefined ? ` (${e.seconds.toFixed(1)} s)` : ''}`);
        if (e.step.kind === 'stop-node' && e.status === 'done') table!.remove(e.step.name);
      }
    };
    return miniApply({
      dir: str(ctx.values, 'dir') ?? DEFAULT_MINI_DIR,
      config,
      overlapMs,
      timeoutMs: timeout === undefined ? undefined : timeout * 60_000,
      onEvent,
      signal: ctx.signal,
      log: ctx.json ? undefined : ctx.log,
    }).finally(() => table?.stop());
  },
  render: (r) =>
    [
      r.steps.length ? `image ${r.imageVersion} on ${r.nodes.length} node(s): ${r.steps.length} steps in ${r.seconds.toFixed(0)} s` : `the cluster is as declared (image ${r.imageVersion}, ${r.nodes.length} node(s))`,
      keyServiceLine(r.keyservice),
    ].join('\n'),
};

export const miniCommands: CommandSpec<any>[] = [up, apply, status, logs, down];
