/**
 * Replays recorded `sextant mini up --json` state changes through the live table, as `up`
 * draws it on a terminal (run inside tmux by test/cli/mini-live.test.ts):
 *   node dist/test/helpers/mini-replay.js EVENTS.jsonl [DELAY_MS]
 * Prints REPLAY-DONE on stdout when the last frame is drawn.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { LiveTable } from '../../cli/mini-live.js';
import type { NodeView } from '../../mini/node-view.js';

export function readEvents(file: string): NodeView[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { event?: string } & NodeView)
    .filter((e) => e.event === 'node')
    .map(({ event: _event, ...v }) => v as NodeView);
}

if (process.argv[1]?.endsWith('mini-replay.js')) {
  const [file, delay] = process.argv.slice(2);
  const table = new LiveTable(process.stderr);
  for (const v of readEvents(file)) {
    table.update(v);
    await sleep(Number(delay ?? 20));
  }
  table.stop();
  process.stdout.write('REPLAY-DONE\n');
}
