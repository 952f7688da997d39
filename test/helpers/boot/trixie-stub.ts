import { access } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../../lib/exec.js';
import { REPO_ROOT } from '../paths.js';
import { TRIXIE_STUB } from './capture-uki.js';

/** Fetches Debian trixie's systemd-stub 257 into .cache/ once (scripts/fetch-trixie-stub.sh). */
export async function ensureTrixieStub(): Promise<string> {
  try {
    await access(TRIXIE_STUB);
  } catch {
    await run('sh', [path.join(REPO_ROOT, 'scripts/fetch-trixie-stub.sh')], { timeoutMs: 300_000 });
  }
  return TRIXIE_STUB;
}
