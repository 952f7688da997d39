import { execa, type ResultPromise } from 'execa';
import { SEXTANT_BIN } from './paths.js';

/** What `sextant keyservice --json` prints as its first line once it listens. */
export interface KeyServiceStarted {
  ok: boolean;
  listening: string;
  fingerprint: string;
  clusterId: string;
}

export interface KeyServiceChild extends KeyServiceStarted {
  child: ResultPromise;
  /** SIGTERM and wait for the exit (idempotent). */
  stop(): Promise<void>;
}

/**
 * Runs `sextant keyservice ARGS --json` as a process (the CLI contract other tools rely on)
 * and resolves with its start line; a refusal to start or an early exit rejects with its output.
 */
export async function spawnKeyService(args: string[]): Promise<KeyServiceChild> {
  const child = execa(process.execPath, [SEXTANT_BIN, 'keyservice', ...args, '--json'], { reject: false });
  const started = await new Promise<KeyServiceStarted>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        const first = JSON.parse(buf.slice(0, nl)) as KeyServiceStarted;
        if (first.ok) resolve(first);
        else reject(new Error(`keyservice refused to start: ${buf}`));
      } catch (e) {
        reject(e as Error);
      }
    });
    void child.then((r) => reject(new Error(`keyservice exited (${String(r.exitCode)}): ${String(r.stderr)}`)));
  }).catch(async (e: unknown) => {
    child.kill('SIGTERM');
    await child;
    throw e;
  });
  return {
    ...started,
    child,
    stop: async () => {
      child.kill('SIGTERM');
      await child;
    },
  };
}
