import { fail, isSextantError } from '../../lib/errors.js';
import type { ExecLogger } from '../../lib/exec.js';
import type { Runner } from '../disk/runner.js';

export interface KubeadmJoinOptions {
  kubeadm: string;
  configPath: string;
  attempts: number;
  retryDelayMs: number;
  runner: Runner;
  sleep?: (ms: number) => Promise<void>;
  log?: ExecLogger;
  signal?: AbortSignal;
  /** Runs before each `kubeadm join` (after the reset of a retry): reinstall what reset removed. */
  beforeAttempt?: (attempt: number) => Promise<void>;
}

/**
 * `kubeadm join --config FILE`, retried a bounded number of times. A failed join can leave
 * half-written state under /etc/kubernetes, so each retry starts with `kubeadm reset --force`.
 */
export async function kubeadmJoin(o: KubeadmJoinOptions): Promise<{ attempts: number }> {
  const sleep = o.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms)));
  let last: unknown;
  for (let i = 1; i <= o.attempts; i++) {
    if (o.signal?.aborted) break;
    try {
      if (i > 1) await o.runner(o.kubeadm, ['reset', '--force'], { log: o.log, timeoutMs: 120_000 });
      await o.beforeAttempt?.(i);
      await o.runner(o.kubeadm, ['join', '--config', o.configPath], { log: o.log, timeoutMs: 600_000 });
      return { attempts: i };
    } catch (e) {
      if (isSextantError(e, 'TOOL_MISSING')) throw e;
      last = e;
      o.log?.(`kubeadm join attempt ${i}/${o.attempts} failed: ${(e as Error).message}`);
      if (i < o.attempts) await sleep(o.retryDelayMs);
    }
  }
  fail('JOIN_FAILED', `kubeadm join failed after ${o.attempts} attempts: ${(last as Error | undefined)?.message ?? 'aborted'}`, last);
}
