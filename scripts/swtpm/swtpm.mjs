#!/usr/bin/env node
// A provisioned software TPM for humans and scripts (tests use test/helpers/swtpm.ts directly):
//   node scripts/swtpm/swtpm.mjs start      -> prints {"tcti","dir","pid","caCertPath",...} and leaves it running
//   node scripts/swtpm/swtpm.mjs stop DIR   -> stops the swtpm whose state is in DIR (by its PID) and removes DIR
// Needs `npm run build` (the harness is compiled TypeScript).
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

const [verb, dir] = process.argv.slice(2);
if (verb === 'start') {
  const { startSwtpm } = await import(new URL('../../dist/test/helpers/swtpm.js', import.meta.url).href);
  const t = await startSwtpm({ log: (l) => process.stderr.write(l + '\n') });
  // The harness kills its swtpm when its process exits: here the caller owns it instead.
  process.removeAllListeners('exit');
  const { stop: _stop, ...info } = t;
  process.stdout.write(JSON.stringify(info, null, 2) + '\n');
} else if (verb === 'stop' && dir) {
  const pid = Number(readFileSync(path.join(dir, 'swtpm.pid'), 'utf8').trim());
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (alive()) process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
  if (alive()) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
} else {
  process.stderr.write('usage: swtpm.mjs start | stop DIR\n');
  process.exit(2);
}
