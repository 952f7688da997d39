import { existsSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { SextantError } from '../lib/errors.js';

/** How to invoke mkosi: the unpacked bookworm-backports 24.x, or one on PATH. */
export interface MkosiCommand {
  cmd: string;
  args: string[];
  env: Record<string, string>;
}

export function locateMkosi(repoRoot: string): MkosiCommand {
  const fromEnv = process.env.SEXTANT_MKOSI;
  if (fromEnv) return { cmd: fromEnv, args: [], env: {} };
  const unpacked = path.join(repoRoot, '.cache/mkosi-24/usr/lib/python3/dist-packages');
  if (existsSync(path.join(unpacked, 'mkosi'))) {
    return { cmd: 'python3', args: ['-m', 'mkosi'], env: { PYTHONPATH: unpacked } };
  }
  throw new SextantError({
    code: 'TOOL_MISSING',
    message: 'mkosi 24 not found: run `scripts/fetch-mkosi.sh` (or `npm run setup`), or set SEXTANT_MKOSI',
  });
}

export interface MkosiRunOptions {
  /** Called with each stage line mkosi prints (its `‣` lines), so a build never looks silent. */
  onStage?: (stage: string) => void;
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** Keep the full output here for error reports. */
  transcript?: string[];
}

/** Runs mkosi, streaming its stage lines; a failure carries the output's last lines. */
export async function runMkosi(mkosi: MkosiCommand, args: string[], opts: MkosiRunOptions = {}): Promise<void> {
  const all = [...mkosi.args, ...args];
  opts.log?.(`+ ${mkosi.cmd} ${all.join(' ')}`);
  const child = execa(mkosi.cmd, all, {
    env: { ...mkosi.env },
    extendEnv: true,
    reject: false,
    all: true,
    cancelSignal: opts.signal,
    stdin: 'ignore',
  });
  const tail: string[] = [];
  let buf = '';
  child.all?.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      opts.transcript?.push(line);
      tail.push(line);
      if (tail.length > 30) tail.shift();
      const m = /^\s*‣\s*(.*)$/.exec(line);
      if (m) opts.onStage?.(m[1].trim());
    }
  });
  const r = await child;
  if (r.exitCode !== 0) {
    throw new SextantError({
      code: 'BUILD_FAILED',
      message: `mkosi ${args.filter((a) => !a.startsWith('-')).join(' ')} exited with ${r.exitCode ?? r.signal}:\n${tail.slice(-12).join('\n')}`,
    });
  }
}
