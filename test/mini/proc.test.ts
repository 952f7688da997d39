/** Process records (mini/proc.ts): a PID is signalled only while it is still the process recorded. */
import test from 'ava';
import { spawn } from 'node:child_process';
import { isSameProcess, processStartTicks, recordProcess, stopProcess } from '../../mini/proc.js';

function start(marker: string) {
  const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', marker], { stdio: 'ignore' });
  return new Promise<typeof c>((resolve) => c.once('spawn', () => resolve(c)));
}

test('stopProcess leaves a process alone whose start time or command line differs from the record, and stops the recorded one', async (t) => {
  const c = await start('/state/nodes/node-1/serial.log');
  t.teardown(() => c.kill('SIGKILL'));
  const rec = recordProcess(c.pid!, '/state/nodes/node-1/serial.log');
  t.true(isSameProcess(rec));
  t.is(await stopProcess({ ...rec, startTicks: rec.startTicks! + 1 }), 'not-ours', 'another start time: a reused PID');
  t.is(await stopProcess({ ...rec, marker: '/state/nodes/node-2/serial.log' }), 'not-ours', 'another command line');
  t.not(processStartTicks(c.pid!), undefined, 'still running');
  t.is(await stopProcess(rec), 'stopped');
  t.false(isSameProcess(rec));
  t.is(await stopProcess(rec), 'gone');
});

test('a process that ignores SIGTERM is killed after the grace time', async (t) => {
  const c = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)", 'stubborn-marker'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => c.kill('SIGKILL'));
  await new Promise((r) => c.stdout!.once('data', r)); // the handler is installed
  t.is(await stopProcess(recordProcess(c.pid!, 'stubborn-marker'), 300), 'killed');
});
