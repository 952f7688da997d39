import test from 'ava';
import { sextant } from '../helpers/cli.js';
import { positionalCount } from '../../cli/command.js';

test('sextant --help lists commands and exits 0', async (t) => {
  const r = await sextant(['--help']);
  t.is(r.exitCode, 0);
  t.regex(r.stdout, /usage: sextant <component> <verb>/);
});

test('an unknown command exits 2 with one coded line', async (t) => {
  const r = await sextant(['frobnicate', 'now']);
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /^sextant: USAGE: /);
  t.is(r.stderr.trim().split('\n').length, 1);
});

test('--json errors are JSON on stdout', async (t) => {
  const r = await sextant(['frobnicate', '--json']);
  t.is(r.exitCode, 2);
  t.like(JSON.parse(r.stdout), { ok: false, code: 'USAGE' });
});

test('positionalCount reads the counts off the usage words: OLD NEW 2..2, [FILE] 0..1, none 0..0', (t) => {
  t.deepEqual(positionalCount('OLD NEW'), { min: 2, max: 2 });
  t.deepEqual(positionalCount('[FILE]'), { min: 0, max: 1 });
  t.deepEqual(positionalCount(undefined), { min: 0, max: 0 });
});

test('a command given fewer positionals than its usage names exits 2 naming them', async (t) => {
  const r = await sextant(['image', 'diff', 'only-one']);
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /^sextant: USAGE: expected OLD NEW;/);
});
