import { execa } from 'execa';
import path from 'node:path';
import { REPO_ROOT } from './paths.js';

/**
 * Real outside data for tests: a Debian package from SUITE, downloaded and unpacked into
 * .cache/debian/SUITE/PACKAGE by scripts/fetch-debian-package.sh (private apt state; nothing
 * is installed into the host). Returns the unpacked root, e.g. `<root>/usr/share/gocode/...`.
 * Debian's Go packages ship their upstream testdata: event logs recorded on real machines
 * (go-eventlog, go-attestation), SNP reports with their VCEK and AMD chains (go-sev-guest).
 */
export async function debianPackage(suite: string, pkg: string): Promise<string> {
  const { stdout } = await execa('sh', [path.join(REPO_ROOT, 'scripts/fetch-debian-package.sh'), suite, pkg], {
    timeout: 300_000,
  });
  return stdout.trim().split('\n').pop()!;
}

/** The upstream Go source tree a Debian golang-*-dev package ships, e.g. goSource(dir, 'github.com/google/go-eventlog'). */
export function goSource(packageRoot: string, module: string): string {
  return path.join(packageRoot, 'usr/share/gocode/src', module);
}
