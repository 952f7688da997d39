/**
 * The rollout executor (mini/apply.ts executePlan) over recorded drivers: the steps run in the
 * plan's order, the first failure stops the run with MINI_APPLY_FAILED naming its step, and a
 * plan made from what the failed run left continues it. The mini CLI's apply refusals and the
 * image version in `mini status` go through the real binary.
 */
import test from 'ava';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isSextantError, SextantError } from '../../lib/errors.js';
import { executePlan, observe, observedNode, socketAdmin, type MeasurementsAdmin, type NodeDriver } from '../../mini/apply.js';
import { planRollout, type ObservedNode } from '../../mini/reconcile/plan.js';
import { writeState, emptyState } from '../../mini/state.js';
import type { NodeView } from '../../mini/node-view.js';
import { sextant } from '../helpers/cli.js';

/** Nodes and sets kept in memory; a node named in `failing` fails its boot. */
function drivers(failing = new Set<string>()) {
  const nodes = new Map<string, ObservedNode>([
    ['node-1', { name: 'node-1', imageVersion: '1.0.0', state: 'joined' }],
    ['node-2', { name: 'node-2', imageVersion: '1.0.0', state: 'joined' }],
  ]);
  const sets = new Map<string, 'current' | 'overlap' | 'retired'>([['1.0.0', 'current']]);
  const log: string[] = [];
  const nd: NodeDriver = {
    nodes: async () => [...nodes.values()],
    add: async (name, v) => {
      log.push(`add ${name}`);
      nodes.set(name, { name, imageVersion: v, state: 'booting' });
    },
    waitJoined: async (name) => {
      log.push(`wait ${name}`);
      const n = nodes.get(name)!;
      if (failing.has(name)) {
        n.state = 'failed';
        throw new SextantError({ code: 'MINI_NODE_FAILED', message: `${name} failed: MEASUREMENTS_MISMATCH` });
      }
      n.state = 'joined';
      return undefined;
    },
    stop: async (name) => {
      log.push(`stop ${name}`);
      nodes.delete(name);
    },
  };
  const admin: MeasurementsAdmin = {
    status: async () => ({ sets: [...sets].map(([imageVersion, state]) => ({ imageVersion, state, label: `sextant-node ${imageVersion}` })) }),
    load: async (o) => {
      log.push(`load ${o.measurementsFile} overlap ${o.overlapMs}`);
      for (const [k, s] of sets) if (s === 'current') sets.set(k, 'overlap');
      sets.set('1.1.0', 'current');
    },
    retire: async (v) => {
      log.push(`retire ${v}`);
      sets.set(v, 'retired');
    },
  };
  return { nodes: nd, admin, log, state: nodes };
}

const declared = { imageVersion: '1.1.0', nodes: 2 };
const measurementsFile = async (v: string) => `/m/${v}.json`;

test('the steps run in order; a failed boot stops the run naming its step; apply again continues from there', async (t) => {
  const d = drivers(new Set(['node-4']));
  const events: string[] = [];
  const plan = planRollout(declared, await observe(d.nodes, d.admin));
  const err = await t.throwsAsync(executePlan(plan, { ...d, measurementsFile, overlapMs: 600_000, onEvent: (e) => e.event === 'step' && events.push(`${e.index}:${e.status}`) }));
  t.true(isSextantError(err, 'MINI_APPLY_FAILED'));
  t.regex(err!.message, /step 6\/8, wait until node-4 attested and joined, failed \(MINI_NODE_FAILED\)/);
  t.deepEqual(d.log, ['load /m/1.1.0.json overlap 600000', 'add node-3', 'wait node-3', 'stop node-1', 'add node-4', 'wait node-4']);
  t.deepEqual(events.slice(-2), ['5:start', '5:failed']);
  t.deepEqual([...d.state.keys()], ['node-2', 'node-3', 'node-4'], 'node-2 (old) still runs: node-4 never joined');

  // Again (the node boots this time): the failed node goes, one new one (node-1's name is free) replaces node-2, 1.0.0 retires.
  const again = drivers();
  for (const [k, v] of d.state) again.state.set(k, v);
  again.state.delete('node-1');
  await again.admin.load({ measurementsFile: 'x' });
  again.log.length = 0;
  const plan2 = planRollout(declared, await observe(again.nodes, again.admin));
  await executePlan(plan2, { ...again, measurementsFile });
  t.deepEqual(again.log, ['stop node-4', 'add node-1', 'wait node-1', 'stop node-2', 'retire 1.0.0']);
  t.deepEqual([...again.state.values()].map((n) => `${n.name} ${n.imageVersion} ${n.state}`), ['node-3 1.1.0 joined', 'node-1 1.1.0 joined']);
});

test('a node view maps to what the planner sees: done and joined is joined, done without a join failed', (t) => {
  const v: NodeView = { name: 'n', image: '/i', imageVersion: '1.0.0', state: 'done', phase: 'ready', attested: true, attestedPcrs: [], joined: true, elapsedSeconds: 1, milestones: {}, pids: {} };
  t.is(observedNode({ ...v, state: 'done' }).state, 'joined');
  t.is(observedNode({ ...v, state: 'done', joined: false }).state, 'failed');
  t.is(observedNode({ ...v, state: 'running' }).state, 'booting');
  t.is(observedNode({ ...v, state: 'stopped' }).state, 'stopped');
  t.is(observedNode({ ...v, state: 'done', imageVersion: undefined }).imageVersion, 'unknown');
});

async function tmp(t: { teardown(f: () => unknown): void }): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'mini-apply-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

test('sextant mini apply: a missing FILE, a bad --overlap, a config outside its schema, an image of another version', async (t) => {
  const d = await tmp(t);
  t.like(await sextant(['mini', 'apply']), { exitCode: 2 });
  const cfg = path.join(d, 'mini.yaml');
  await writeFile(cfg, 'imageVersion: 1.1.0\nimage: img\nkubernetesVersion: v1.33.4\nnodes: 2\nreplicas: 3\n');
  let r = await sextant(['mini', 'apply', cfg, '--dir', path.join(d, 'state'), '--json']);
  t.is(r.exitCode, 2);
  t.like(JSON.parse(r.stdout), { ok: false, code: 'MINI_CONFIG_INVALID' });
  t.regex(r.stdout, /replicas: unknown field/);
  r = await sextant(['mini', 'apply', cfg, '--overlap', '10 minutes']);
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /^sextant: INVALID_ARGUMENT: --overlap/);
  await writeFile(cfg, 'imageVersion: 1.1.0\nimage: img\nkubernetesVersion: v1.33.4\nnodes: 2\n');
  r = await sextant(['mini', 'apply', cfg, '--dir', path.join(d, 'state')]);
  t.regex(r.stderr, /^sextant: FILE_NOT_FOUND: .*img has no sextant-node.raw/);
  await mkdir(path.join(d, 'img'));
  await writeFile(path.join(d, 'img', 'sextant-node.raw'), '');
  await writeFile(path.join(d, 'img', 'measurements.json'), JSON.stringify({ image: { name: 'sextant-node', version: '1.0.0' } }));
  r = await sextant(['mini', 'apply', cfg, '--dir', path.join(d, 'state')]);
  t.regex(r.stderr, /^sextant: IMAGE_MISMATCH: .*is image version "1.0.0", the config declares 1.1.0/);
  t.like(await sextant(['mini', 'apply', path.join(d, 'absent.yaml')]), { exitCode: 2 });
});

test('sextant mini status shows the image version recorded for each node, and the one in its image for a node without', async (t) => {
  const d = await tmp(t);
  const img = path.join(d, 'img');
  await mkdir(img);
  await writeFile(path.join(img, 'measurements.json'), JSON.stringify({ image: { name: 'sextant-node', version: '1.0.0' } }));
  const s = emptyState();
  const node = (name: string, imageVersion?: string) => ({ name, image: img, ...(imageVersion && { imageVersion }), dir: path.join(d, 'nodes', name), statePartUuid: '0f0e0d0c-0000-4000-8000-00000000000' + name.at(-1), createdAt: new Date().toISOString() });
  s.nodes['node-1'] = node('node-1');
  s.nodes['node-3'] = node('node-3', '1.1.0');
  await writeState(path.join(d, 'state'), s);
  const j = await sextant(['mini', 'status', '--dir', path.join(d, 'state'), '--json']);
  t.is(j.exitCode, 0, j.stderr);
  t.deepEqual(JSON.parse(j.stdout).nodes.map((n: { name: string; imageVersion: string }) => [n.name, n.imageVersion]), [['node-1', '1.0.0'], ['node-3', '1.1.0']]);
  const txt = await sextant(['mini', 'status', '--dir', path.join(d, 'state')]);
  t.regex(txt.stdout, /^NODE\s+IMAGE\s+BOOT PHASE/m);
  t.regex(txt.stdout, /^node-3\s+1\.1\.0\s+stopped/m);
});

test('the admin adapter over the key service client: no service on the socket is KEYSERVICE_UNREACHABLE, and the load step fails naming it', async (t) => {
  const d = await tmp(t);
  const admin = socketAdmin(path.join(d, 'state'));
  const e = await t.throwsAsync(admin.status());
  t.true(isSextantError(e, 'KEYSERVICE_UNREACHABLE'), String(e));
  const plan = planRollout(declared, { nodes: [], measurements: [] });
  const err = await t.throwsAsync(executePlan(plan, { nodes: drivers().nodes, admin, measurementsFile: async () => path.join(d, 'm.json') }));
  t.true(isSextantError(err, 'MINI_APPLY_FAILED'));
  t.regex(err!.message, /^step 1\/5, load the measurements of image 1\.1\.0, failed \(FILE_NOT_FOUND\)/);
});

test('a rollout step line goes above the live table; not on a terminal, one plain line', async (t) => {
  const { LiveTable } = await import('../../cli/mini-live.js');
  const out: string[] = [];
  const table = new LiveTable({ write: (s: string) => out.push(s) > 0, isTTY: false });
  table.note('[1/8] load the measurements of image 1.1.0: done (0.1 s)');
  t.deepEqual(out, ['[1/8] load the measurements of image 1.1.0: done (0.1 s)\n']);
  const tty: string[] = [];
  const live = new LiveTable({ write: (s: string) => tty.push(s) > 0, isTTY: true, columns: 200 });
  const v: NodeView = { name: 'node-3', image: '/i', imageVersion: '1.1.0', state: 'running', phase: 'kernel', attested: false, attestedPcrs: [], joined: false, elapsedSeconds: 1, milestones: {}, pids: {} };
  live.update(v);
  live.note('[2/8] add node-3 on image 1.1.0: done');
  live.stop();
  // The table (header + one row) is erased, the line written, the table drawn again below it.
  t.true(tty[1].startsWith('\x1b[2A\r\x1b[J[2/8] add node-3 on image 1.1.0: done\n'), JSON.stringify(tty[1]));
  t.regex(tty.at(-1)!, /node-3\s+1\.1\.0\s+kernel/);
});
