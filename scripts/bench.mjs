#!/usr/bin/env node
// `npm run bench [name...]`: runs each compiled benchmark in dist/bench/ in its own process,
// one after another (never in parallel: they compare timings).
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, 'dist/bench');
const wanted = process.argv.slice(2);
// Benchmarks that take minutes run only when named (`npm run bench image-build`).
const SLOW = new Set(['image-build.js']);
const benches = readdirSync(dir)
  .filter((f) => f.endsWith('.js') && f !== 'harness.js')
  .filter((f) => (wanted.length === 0 ? !SLOW.has(f) : wanted.some((w) => f.startsWith(w))))
  .sort();
let failed = 0;
for (const f of benches) {
  const r = spawnSync(process.execPath, [path.join(dir, f)], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) {
    failed++;
    process.stderr.write(`bench ${f} failed (exit ${r.status})\n`);
  }
}
process.exitCode = failed ? 1 : 0;
