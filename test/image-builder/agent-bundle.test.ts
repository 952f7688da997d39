import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { stageAgentTree } from '../../image-builder/agent-bundle.js';
import { REPO_ROOT } from '../helpers/paths.js';

/**
 * The agent as the image ships it: the esbuild bundle run by node from the staged tree, away
 * from the repository's node_modules. An earlier bundle only defined main() and exited 0
 * doing nothing, which the image's Type=notify unit reported as a bare failure.
 */
test('the staged bundle runs the CLI (with koffi beside it) and is byte-identical when staged twice', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-agent-tree-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const one = await stageAgentTree(REPO_ROOT, path.join(dir, 'one'));
  const two = await stageAgentTree(REPO_ROOT, path.join(dir, 'two'));
  t.deepEqual(one.sha256, two.sha256, 'deterministic');
  t.true(one.files.includes('usr/lib/systemd/system/sextant-agent.service'));

  const bundle = path.join(dir, 'one/usr/lib/sextant/sextant.mjs');
  // cwd outside the repository: only the tree's own node_modules/koffi can satisfy the import.
  const help = await execa(process.execPath, [bundle, '--help'], { cwd: os.tmpdir(), reject: false });
  t.is(help.exitCode, 0, help.stderr);
  t.regex(help.stdout, /agent attest/);

  const missing = await execa(process.execPath, [bundle, 'measure', 'pe', path.join(dir, 'none.efi'), '--json'], { cwd: os.tmpdir(), reject: false });
  t.is(missing.exitCode, 2, 'a missing file is an input error, reported');
  t.is(JSON.parse(missing.stdout).code, 'FILE_NOT_FOUND');

  const wrapper = await readFile(path.join(dir, 'one/usr/bin/sextant'), 'utf8');
  t.regex(wrapper, /exec \/usr\/bin\/node \/usr\/lib\/sextant\/sextant\.mjs "\$@"/);
});
