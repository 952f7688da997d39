import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FAILURE_ERROR_CODES, INPUT_ERROR_CODES } from '../../lib/errors.js';
import { REPO_ROOT } from '../helpers/paths.js';

const CODES: string[] = [...INPUT_ERROR_CODES, ...FAILURE_ERROR_CODES];

test('every error code is raised somewhere in the code, not only declared (no dead codes)', (t) => {
  const files = execFileSync('git', ['ls-files', '*.ts'], { cwd: REPO_ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && !f.startsWith('test/') && f !== 'lib/errors.ts');
  const source = files.map((f) => readFileSync(path.join(REPO_ROOT, f), 'utf8')).join('\n');
  t.deepEqual(CODES.filter((c) => !source.includes(`'${c}'`)), [], 'codes no library, command or script raises');
});

test('docs/errors.md has one row per code, with its exit code, and no row for a code that does not exist', (t) => {
  const rows = [...readFileSync(path.join(REPO_ROOT, 'docs/errors.md'), 'utf8').matchAll(/^\| `([A-Z0-9_]+)` \| ([12]) \|/gm)].map((m) => [m[1], Number(m[2])]);
  const expected = CODES.map((c) => [c, (INPUT_ERROR_CODES as readonly string[]).includes(c) ? 2 : 1]);
  t.deepEqual(rows, expected, 'regenerate with: npm run build && node scripts/gen-errors.mjs');
});

test('library code throws only SextantError: no plain Error, TypeError or RangeError outside cli/, test/, bench/ and scripts/', (t) => {
  const files = execFileSync('git', ['ls-files', '*.ts'], { cwd: REPO_ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && !/^(cli|test|bench|scripts)\//.test(f));
  const offenders = files.flatMap((f) =>
    readFileSync(path.join(REPO_ROOT, f), 'utf8')
      .split('\n')
      .flatMap((line, i) => (/\bnew (Type|Range)?Error\(/.test(line) ? [`${f}:${i + 1}`] : [])),
  );
  t.deepEqual(offenders, []);
});
