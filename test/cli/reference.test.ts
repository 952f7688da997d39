/**
 * The CLI reference and `sextant --help` come from the command registry: the generated files
 * are current, every module answers for exactly its first word, a command imports only its
 * own module, and `required` / `choices` are enforced before a command runs.
 */
import test from 'ava';
import { appendFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { COMMAND_MODULES, registry } from '../../cli/registry.js';
import { renderCliReference, renderSummaries } from '../../cli/reference.js';
import { checkOptionValues } from '../../cli/main.js';
import type { CommandSpec } from '../../cli/command.js';
import { REPO_ROOT, SEXTANT_BIN } from '../helpers/paths.js';
import { sextant } from '../helpers/cli.js';

test('cli/summaries.ts and docs/cli.md are what the registry generates (else: npm run gen:cli)', async (t) => {
  const cmds = await registry();
  t.is(await readFile(path.join(REPO_ROOT, 'cli/summaries.ts'), 'utf8'), renderSummaries(cmds), 'cli/summaries.ts is stale: run npm run gen:cli');
  t.is(await readFile(path.join(REPO_ROOT, 'docs/cli.md'), 'utf8'), renderCliReference(cmds), 'docs/cli.md is stale: run npm run gen:cli');
});

test("each command module holds only commands under its own first word (lazy dispatch loads that one module)", async (t) => {
  for (const [word, load] of Object.entries(COMMAND_MODULES)) {
    const cmds = await load();
    t.true(cmds.length > 0, word);
    for (const c of cmds) t.is(c.path[0], word, c.path.join(' '));
  }
});

/** The dist/ modules a CLI invocation imports, recorded by a module resolve hook. */
async function modulesLoaded(t: { teardown(f: () => Promise<void>): void }, args: string[]): Promise<string[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cli-lazy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'loaded.txt');
  await writeFile(path.join(dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';
export async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }\n`);
  await writeFile(path.join(dir, 'register.mjs'), `import { register } from 'node:module'; register('./hooks.mjs', import.meta.url);\n`);
  appendFileSync(log, '');
  const r = await execa(process.execPath, ['--import', path.join(dir, 'register.mjs'), SEXTANT_BIN, ...args], { reject: false });
  if (r.exitCode !== 0) throw new Error(`sextant ${args.join(' ')}: ${String(r.stderr)}`);
  const dist = 'file://' + path.join(REPO_ROOT, 'dist') + '/';
  return (await readFile(log, 'utf8')).split('\n').filter((u) => u.startsWith(dist)).map((u) => u.slice(dist.length));
}

test('sextant agent run --help imports the agent module only: no key service, image builder or measurement CLI', async (t) => {
  const loaded = await modulesLoaded(t, ['agent', 'run', '--help']);
  t.true(loaded.includes('cli/commands/agent.js'));
  for (const never of ['keyservice/service.js', 'keyservice/attestor.js', 'cli/commands/keyservice.js', 'cli/commands/image.js', 'cli/commands/measurements.js', 'cli/commands/measure.js']) {
    t.false(loaded.includes(never), never);
  }
  t.false(loaded.some((m) => m.startsWith('image-builder/')), loaded.filter((m) => m.startsWith('image-builder/')).join(', '));
});

test('sextant --help imports no command module', async (t) => {
  const loaded = await modulesLoaded(t, ['--help']);
  t.deepEqual(loaded.filter((m) => m.startsWith('cli/commands/')), []);
});

test('required and choices: absent, empty, or outside the choices is the first violation; fine values pass', (t) => {
  const cmd = { path: ['x'], summary: '', options: { a: { type: 'string', description: '', required: true }, r: { type: 'string', description: '', choices: ['join', 'rejoin'] }, m: { type: 'string', multiple: true, description: '', choices: ['p', 'q'] } }, run: async () => undefined } as CommandSpec;
  t.is(checkOptionValues(cmd, {}), '--a is required');
  t.is(checkOptionValues(cmd, { a: '' }), '--a is required');
  t.regex(checkOptionValues(cmd, { a: 'v', r: 'leave' })!, /^--r must be one of join, rejoin, got "leave"/);
  t.regex(checkOptionValues(cmd, { a: 'v', m: ['p', 'z'] })!, /^--m must be one of p, q, got "z"/);
  t.is(checkOptionValues(cmd, { a: 'v', r: 'rejoin', m: ['q', 'p'] }), undefined);
});

test('as the user sees it: a missing required option and a bad choice are exit 2 USAGE naming the option, before anything runs', async (t) => {
  const missing = await sextant(['recover', '--json']);
  t.is(missing.exitCode, 2);
  t.like(JSON.parse(missing.stdout), { ok: false, code: 'USAGE' });
  t.regex(missing.stderr, /--node is required/);
  const choice = await sextant(['agent', 'attest', '--role', 'leave', '--keyservice', 'https://127.0.0.1:1', '--ca-fingerprint', 'sha256:' + '0'.repeat(64), '--disk-uuid', '5eed0000-1234-4abc-8def-0123456789ab', '--json']);
  t.is(choice.exitCode, 2);
  t.regex(JSON.parse(choice.stdout).message as string, /--role must be one of join, rejoin/);
  const help = await sextant(['agent', 'attest', '--help']);
  t.regex(help.stdout, /--keyservice URL\s+.*\(required\)/);
});
