/** Exponential backoff with full jitter: delay n is uniform in [0, min(cap, base * 2^n)). */
export interface BackoffOptions {
  attempts: number;
  baseMs: number;
  capMs: number;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  signal?: AbortSignal;
}

export function backoffDelay(attempt: number, o: Pick<BackoffOptions, 'baseMs' | 'capMs' | 'random'>): number {
  const ceiling = Math.min(o.capMs, o.baseMs * 2 ** attempt);
  return Math.floor((o.random ?? Math.random)() * ceiling);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `f` until it succeeds, `retryable(error)` says no, or the attempts are used up; the
 * last error is rethrown. `onRetry` hears about each wait (for the agent's log).
 */
export async function withRetries<T>(
  f: (attempt: number) => Promise<T>,
  retryable: (e: unknown) => boolean,
  o: BackoffOptions,
  onRetry?: (e: unknown, attempt: number, delayMs: number) => void,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await f(attempt);
    } catch (e) {
      if (attempt + 1 >= o.attempts || !retryable(e)) throw e;
      const d = backoffDelay(attempt, o);
      onRetry?.(e, attempt, d);
      await (o.sleep ?? sleep)(d, o.signal);
    }
  }
}
