/**
 * The floors of docs/design.md that a wrong import would break silently: production code never
 * imports test/, and mini/ (the local cluster) sits above every peer and below cli/ only.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/paths.js';

const files = execFileSync('git', ['ls-files', '*.ts'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
const imports = (f: string): string[] =>
  [...readFileSync(path.join(REPO_ROOT, f), 'utf8').matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g)].map((m) =>
    path.relative(REPO_ROOT, path.resolve(REPO_ROOT, path.dirname(f), m[1] ?? m[2])),
  );
const floor = (p: string) => p.split(path.sep)[0];

test('production code never imports test/ (the e2e harness lives in mini/, test/helpers re-exports it)', (t) => {
  const bad = files.filter((f) => !['test', 'bench'].includes(floor(f))).flatMap((f) => imports(f).filter((i) => floor(i) === 'test').map((i) => `${f} -> ${i}`));
  t.deepEqual(bad, []);
});

test('mini/ imports no cli/, and only cli/, test/, bench/ and scripts import mini/', (t) => {
  const bad: string[] = [];
  for (const f of files) {
    for (const i of imports(f)) {
      if (floor(f) === 'mini' && floor(i) === 'cli') bad.push(`${f} -> ${i}`);
      if (floor(i) === 'mini' && !['mini', 'cli', 'test', 'bench', 'scripts'].includes(floor(f))) bad.push(`${f} -> ${i}`);
    }
  }
  t.deepEqual(bad, []);
  t.true(files.filter((f) => floor(f) === 'test').some((f) => imports(f).some((i) => floor(i) === 'mini')), 'the test harness does use mini/');
});
