import { execa } from 'execa';
import { SextantError } from './errors.js';

/** Where the runner reports each command; libraries never print, the caller decides. */
export type ExecLogger = (line: string) => void;

export interface ExecOptions {
  /** Bytes for the child's stdin (keys go here, never on the command line or in files). */
  input?: Uint8Array | string;
  /** Argument values to show as `***` in logs and errors. */
  secrets?: string[];
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Exit codes that are not failures (e.g. blkid's 2 for "nothing found"). */
  okExitCodes?: number[];
  log?: ExecLogger;
  /** Return stdout as a Buffer instead of a string. */
  binary?: boolean;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
}

function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

export function describeCommand(cmd: string, args: readonly string[], secrets: readonly string[] = []): string {
  let line = [cmd, ...args].map(shellQuote).join(' ');
  for (const s of secrets) if (s) line = line.split(s).join('***');
  return line;
}

/**
 * Runs an external tool (cryptsetup, mkfs, kubeadm, mkosi, qemu...). A missing tool is
 * TOOL_MISSING, a non-zero exit EXEC_FAILED carrying stderr's last lines.
 */
export async function run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const shown = describeCommand(cmd, args, opts.secrets);
  opts.log?.(`+ ${shown}`);
  let r;
  try {
    r = await execa(cmd, args, {
      // A view, not a copy: callers zeroize key buffers, and a hidden copy would outlive that.
      input: opts.input === undefined ? undefined : typeof opts.input === 'string' ? opts.input : Buffer.from(opts.input.buffer, opts.input.byteOffset, opts.input.byteLength),
      stdin: opts.input === undefined ? 'ignore' : undefined,
      cwd: opts.cwd,
      env: opts.env,
      extendEnv: true,
      timeout: opts.timeoutMs,
      reject: false,
      stripFinalNewline: false,
      encoding: 'buffer',
    });
  } catch (cause) {
    throw new SextantError({ code: 'EXEC_FAILED', message: `could not run ${shown}`, cause });
  }
  const stdoutBytes = Buffer.from(r.stdout as Uint8Array);
  const stderr = Buffer.from(r.stderr as Uint8Array).toString('utf8');
  if ((r as { code?: string }).code === 'ENOENT' || (r.failed && r.exitCode === undefined && /ENOENT/.test(String(r.message)))) {
    throw new SextantError({ code: 'TOOL_MISSING', message: `${cmd} is not installed (needed for: ${shown})` });
  }
  if (r.timedOut) {
    throw new SextantError({ code: 'TIMEOUT', message: `${shown} timed out after ${opts.timeoutMs} ms` });
  }
  const exitCode = r.exitCode ?? -1;
  if (exitCode !== 0 && !(opts.okExitCodes ?? []).includes(exitCode)) {
    const tail = stderr.trim().split('\n').slice(-3).join(' | ');
    let msg = `${shown} exited with ${exitCode}${tail ? `: ${tail}` : ''}`;
    for (const s of opts.secrets ?? []) if (s) msg = msg.split(s).join('***');
    throw new SextantError({ code: 'EXEC_FAILED', message: msg });
  }
  return { exitCode, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr };
}

/** True when `cmd` can be found on PATH (or is an existing path). */
export async function hasTool(cmd: string): Promise<boolean> {
  try {
    const r = await execa('sh', ['-c', `command -v ${shellQuote(cmd)}`], { reject: false });
    return r.exitCode === 0;
  } catch {
    return false;
  }
}
