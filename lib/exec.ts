import { spawn } from 'node:child_process';
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
 * TOOL_MISSING, a non-zero exit EXEC_FAILED carrying stderr's last lines. node:child_process
 * directly (execa cost every command ~14 MiB of RSS just to load).
 */
export async function run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const shown = describeCommand(cmd, args, opts.secrets);
  opts.log?.(`+ ${shown}`);
  const r = await spawnCollect(cmd, args, opts).catch((cause: unknown) => {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new SextantError({ code: 'TOOL_MISSING', message: `${cmd} is not installed (needed for: ${shown})` });
    throw new SextantError({ code: 'EXEC_FAILED', message: `could not run ${shown}`, cause });
  });
  const stderr = r.stderr.toString('utf8');
  if (r.timedOut) {
    throw new SextantError({ code: 'TIMEOUT', message: `${shown} timed out after ${opts.timeoutMs} ms` });
  }
  const exitCode = r.exitCode ?? -1;
  if (exitCode !== 0 && !(opts.okExitCodes ?? []).includes(exitCode)) {
    const tail = stderr.trim().split('\n').slice(-3).join(' | ');
    let msg = `${shown} exited with ${r.signal ? `signal ${r.signal}` : exitCode}${tail ? `: ${tail}` : ''}`;
    for (const s of opts.secrets ?? []) if (s) msg = msg.split(s).join('***');
    throw new SextantError({ code: 'EXEC_FAILED', message: msg });
  }
  return { exitCode, stdout: r.stdout.toString('utf8'), stdoutBytes: r.stdout, stderr };
}

interface Collected {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
}

/** Spawns, feeds stdin, collects both outputs; rejects only when the process cannot start. */
function spawnCollect(cmd: string, args: readonly string[], opts: ExecOptions): Promise<Collected> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    let timedOut = false;
    let kill: NodeJS.Timeout | undefined;
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      // A tool that ignores SIGTERM still ends.
      kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    }, opts.timeoutMs);
    child.once('exit', () => {
      // After a timeout kill, a grandchild may still hold the pipes open: stop reading them.
      if (timedOut) for (const st of [child.stdout, child.stderr]) st?.destroy();
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      clearTimeout(kill);
      reject(e);
    });
    child.once('close', (exitCode, signal) => {
      clearTimeout(timer);
      clearTimeout(kill);
      resolve({ exitCode, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err), timedOut });
    });
    if (opts.input !== undefined) {
      // A tool that exits without reading its stdin is judged by its exit code, not EPIPE.
      child.stdin!.on('error', () => undefined);
      // A view, not a copy: callers zeroize key buffers, and a hidden copy would outlive that.
      child.stdin!.end(typeof opts.input === 'string' ? opts.input : Buffer.from(opts.input.buffer, opts.input.byteOffset, opts.input.byteLength));
    }
  });
}

/** True when `cmd` can be found on PATH (or is an existing path). */
export async function hasTool(cmd: string): Promise<boolean> {
  try {
    return (await spawnCollect('sh', ['-c', `command -v ${shellQuote(cmd)}`], {})).exitCode === 0;
  } catch {
    return false;
  }
}
