#!/usr/bin/env node
// `npm run setup`: installs the Debian packages sextant's tools and tests use (when run as
// root; otherwise prints the command), the npm dependencies, and builds. Plain node only:
// it runs before node_modules exists.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkgs = readFileSync(path.join(root, 'scripts/system-packages.txt'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

function sh(cmd, args) {
  process.stderr.write(`+ ${cmd} ${args.join(' ')}\n`);
  execFileSync(cmd, args, { stdio: 'inherit', cwd: root, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

const missing = pkgs.filter((p) => {
  try {
    return !/^install ok installed/m.test(execFileSync('dpkg-query', ['-W', '-f=${Status}\n', p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  } catch {
    return true;
  }
});
if (missing.length > 0) {
  if (process.getuid?.() === 0) {
    sh('apt-get', ['update', '-q']);
    sh('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing]);
  } else {
    process.stderr.write(`setup: missing Debian packages; run as root:\n  sudo apt-get install -y --no-install-recommends ${missing.join(' ')}\n`);
  }
}
// mkosi 24 for `sextant image build`, unpacked privately (never installed into the host).
if (process.getuid?.() === 0) sh('sh', ['scripts/fetch-mkosi.sh']);
sh('npm', ['ci', '--no-audit', '--no-fund']);
sh('npm', ['run', 'build']);
process.stderr.write('setup: done\n');
