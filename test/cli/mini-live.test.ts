/**
 * The live table of `sextant mini up` in a real terminal: recorded state changes of a real
 * two-node `mini up --json` run on this project's machine (test/fixtures/mini/) are replayed
 * through the same LiveTable inside tmux, and the screen (tmux capture-pane) must show exactly
 * the final table once: earlier frames redrawn in place, none left behind.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { renderTable } from '../../mini/table.js';
import type { NodeView } from '../../mini/node-view.js';
import { readEvents } from '../helpers/mini-replay.js';
import { FIXTURES, REPO_ROOT } from '../helpers/paths.js';

const exec = promisify(execFile);
const EVENTS = path.join(FIXTURES, 'mini/up-2-nodes.jsonl');

test('tmux: the table is redrawn in place and the screen ends with the final row of each node, once', async (t) => {
  const events = readEvents(EVENTS);
  const finals = new Map<string, NodeView>();
  for (const v of events) finals.set(v.name, v);
  t.true(events.length > finals.size * 4, `a recording with several changes per node (${events.length})`);
  const socket = `sextant-mini-test-${process.pid}`;
  const replay = path.join(REPO_ROOT, 'dist/test/helpers/mini-replay.js');
  await exec('tmux', ['-L', socket, '-f', '/dev/null', 'new-session', '-d', '-x', '200', '-y', '40', `${process.execPath} ${replay} ${EVENTS} 15; sleep 60`]);
  try {
    let screen = '';
    for (let i = 0; i < 200 && !screen.includes('REPLAY-DONE'); i++) {
      await sleep(100);
      screen = (await exec('tmux', ['-L', socket, 'capture-pane', '-p'])).stdout;
    }
    t.true(screen.includes('REPLAY-DONE'), screen);
    const lines = screen.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '' && l !== 'REPLAY-DONE');
    const expected = renderTable([...finals.values()], 199);
    t.deepEqual(lines, expected, `screen:\n${screen}`);
    t.false(/starting|firmware/.test(screen), 'no row of an earlier frame is left on the screen');
  } finally {
    await exec('tmux', ['-L', socket, 'kill-server']).catch(() => undefined);
  }
});

test('not a terminal: one line per change, naming the node and what it shows', async (t) => {
  const { LiveTable } = await import('../../cli/mini-live.js');
  const out: string[] = [];
  const table = new LiveTable({ write: (s: string) => out.push(s) > 0, isTTY: false });
  const events = readEvents(EVENTS);
  for (const v of events) table.update(v);
  table.stop();
  t.is(out.length, events.length);
  t.regex(out.at(-1)!, /^\d+:\d\d node-\d: image -; done; agent done done; attested yes \(4 9 11 12 13\); disk formatted; joined yes \(kubeadm join\)\n$/);
  t.false(out.some((l) => l.includes('\x1b')), 'no escape sequences in a log');
});
