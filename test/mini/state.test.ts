/**
 * The mini cluster's state folder after a crash: records of processes that are gone are
 * cleaned, a PID that now belongs to another process is never signalled, a process started
 * but not yet recorded (its PID file only) is found and stopped, and the lock of a dead
 * command is taken over. Real processes throughout (node children standing in for qemu).
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MiniCluster } from '../../mini/cluster.js';
import { isSameProcess, processStartTicks, recordProcess } from '../../mini/proc.js';
import { parseState, readState, writeState, type MiniState, type NodeRecord } from '../../mini/state.js';

const alive = (pid: number) => processStartTicks(pid) !== undefined;

/** A long-running process whose command line carries `marker` (as qemu's carries its serial log path). */
function holder(marker = 'unrelated'): Promise<ChildProcess> {
  const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', marker], { stdio: 'ignore' });
  return new Promise((resolve) => c.once('spawn', () => resolve(c)));
}

async function exitedPid(): Promise<number> {
  const c = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((r) => c.once('exit', r));
  return c.pid!;
}

async function folder(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mini-state-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function nodeRecord(dir: string, name = 'node-1'): NodeRecord {
  return { name, image: '/nonexistent/image', dir: path.join(dir, 'nodes', name), statePartUuid: '0f0e0d0c-0000-4000-8000-000000000001', createdAt: new Date().toISOString() };
}

test('a stale PID file and record left by a crash are cleaned on open; nothing is signalled', async (t) => {
  const dir = await folder(t);
  const n = nodeRecord(dir);
  const run = path.join(n.dir, 'run');
  await mkdir(run, { recursive: true });
  const pid = await exitedPid();
  await writeFile(path.join(run, 'qemu.pid'), `${pid}\n`);
  n.boot = { startedAt: new Date().toISOString(), accel: 'tcg-single', cpus: 1, memoryMiB: 2048, qemu: { pid, startTicks: 12345, marker: path.join(n.dir, 'serial.log') } };
  await writeState(dir, { v: 1, createdAt: new Date().toISOString(), nodes: { [n.name]: n } });
  const c = await MiniCluster.open({ dir });
  try {
    t.deepEqual(c.reconciled.gone, [`node-1 qemu (PID ${pid})`]);
    t.false(existsSync(path.join(run, 'qemu.pid')), 'the stale PID file is removed');
  } finally {
    await c.close();
  }
  t.is((await readState(dir))!.nodes['node-1'].boot!.qemu, undefined, 'the record is gone from state.json');
});

test('a recorded PID reused by another process is dropped, never killed, by open and by down', async (t) => {
  const dir = await folder(t);
  const other = await holder();
  t.teardown(() => other.kill('SIGKILL'));
  const n = nodeRecord(dir);
  const real = recordProcess(other.pid!, 'unrelated');
  // Same PID, another start time (the recorded process exited and the PID was handed out again).
  n.boot = { startedAt: new Date().toISOString(), accel: 'tcg-single', cpus: 1, memoryMiB: 2048, qemu: { pid: other.pid!, startTicks: real.startTicks! - 1, marker: 'unrelated' } };
  // Same PID and start time, but the command line lacks the node's path: not ours either.
  n.boot.swtpm = { pid: other.pid!, startTicks: real.startTicks, marker: path.join(n.dir, 'tpm', 'state') };
  await writeState(dir, { v: 1, createdAt: new Date().toISOString(), nodes: { [n.name]: n } });
  const c = await MiniCluster.open({ dir });
  try {
    t.deepEqual(c.reconciled.reused.sort(), [`node-1 qemu (PID ${other.pid})`, `node-1 swtpm (PID ${other.pid})`]);
    const r = await c.down();
    t.deepEqual(r.stopped, [], 'down has nothing of its own to stop');
  } finally {
    await c.close();
  }
  t.true(alive(other.pid!), 'the other process still runs');
  t.true(isSameProcess(real));
});

test('a process started but not recorded before a crash is found by its PID file and stopped by down', async (t) => {
  const dir = await folder(t);
  const n = nodeRecord(dir);
  const run = path.join(n.dir, 'run');
  await mkdir(run, { recursive: true });
  const q = await holder(path.join(n.dir, 'serial.log'));
  t.teardown(() => q.kill('SIGKILL'));
  await writeFile(path.join(run, 'qemu.pid'), `${q.pid}\n`);
  n.boot = { startedAt: new Date().toISOString(), accel: 'tcg-single', cpus: 1, memoryMiB: 2048 };
  await writeState(dir, { v: 1, createdAt: new Date().toISOString(), nodes: { [n.name]: n } });
  const c = await MiniCluster.open({ dir });
  let stopped;
  try {
    t.deepEqual(c.reconciled.adopted, [`node-1 qemu (PID ${q.pid})`]);
    stopped = (await c.down()).stopped;
  } finally {
    await c.close();
  }
  t.deepEqual(stopped, [{ what: 'node-1 qemu', pid: q.pid, outcome: 'stopped' }]);
  t.false(alive(q.pid!), 'stopped');
  t.false(existsSync(dir), 'down without --keep-state removes the folder');
});

test('the lock: a live holder makes MINI_BUSY, a dead holder\'s lock is taken over', async (t) => {
  const dir = await folder(t);
  const live = await holder('lock-holder');
  t.teardown(() => live.kill('SIGKILL'));
  await writeFile(path.join(dir, 'lock'), JSON.stringify(recordProcess(live.pid!, 'lock-holder')));
  await t.throwsAsync(MiniCluster.open({ dir }), { code: 'MINI_BUSY' });
  await writeFile(path.join(dir, 'lock'), JSON.stringify({ pid: await exitedPid(), marker: 'x' }));
  const c = await MiniCluster.open({ dir });
  t.true(JSON.parse(await readFile(path.join(dir, 'lock'), 'utf8')).pid === process.pid);
  await c.close();
  t.false(existsSync(path.join(dir, 'lock')));
});

test('a state.json sextant did not write is MINI_STATE_INVALID', (t) => {
  const bad: unknown[] = ['', '[]', '{"v":2,"nodes":{}}', '{"v":1}', '{"v":1,"nodes":{"../x":{"name":"../x","dir":"/","image":"/"}}}',
    '{"v":1,"nodes":{"n":{"name":"n","dir":"/d","image":"/i","boot":{"qemu":{"pid":"1"}}}}}'];
  for (const text of bad) t.throws(() => parseState(String(text), 'state.json'), { code: 'MINI_STATE_INVALID' }, String(text));
  const ok: MiniState = { v: 1, createdAt: 'x', nodes: {} };
  t.deepEqual(parseState(JSON.stringify(ok), 'state.json'), ok);
});
