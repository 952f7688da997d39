import test from 'ava';
import { sextant } from '../helpers/cli.js';

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
