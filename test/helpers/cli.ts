import { execa } from 'execa';
import { SEXTANT_BIN } from './paths.js';

/** Runs the real CLI as a user would (a child process), never throwing on exit codes. */
export async function sextant(args: string[], opts: { input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number } = {}) {
  const r = await execa(process.execPath, [SEXTANT_BIN, ...args], {
    reject: false,
    input: opts.input,
    env: opts.env,
    timeout: opts.timeoutMs ?? 120_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
