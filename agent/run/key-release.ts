import { zeroize } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import type { ConfirmSession, JoinTicket } from '../../protocol/messages.js';
import { backoffDelay } from '../attest/backoff.js';
import type { AttestResult } from '../attest/client.js';
import { isFinalRefusal } from '../attest/transport.js';
import type { Clock } from './deps.js';
import type { RecoverySource } from './recovery-source.js';

/** The secrets that open the state disk, from whichever source delivered first. */
export interface KeyRelease {
  /** Zeroized by the caller once the disk is open. */
  diskKey: Buffer;
  clusterId: string;
  joinTicket?: JoinTicket;
  /** The key service's post-lock confirm session (none from the recovery endpoint). */
  confirm?: ConfirmSession;
  warnings: string[];
  attempts: number;
  source: 'keyservice' | 'recovery';
  /** The key service endpoint that answered (none for the recovery endpoint). */
  endpoint?: string;
}

/**
 * Delay before retry `attempt` (0-based): uniform in [3c/4, c] with c = min(maxMs, initialMs *
 * 2^attempt). Three quarters of each delay are fixed, so a node never retries in a tight loop
 * and every wait is at least 1.5 times the one before (until the cap), however the dice fall;
 * the last quarter spreads a fleet that lost its key service at the same moment.
 */
export function retryDelay(attempt: number, initialMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 52));
  const fixed = Math.ceil((ceiling * 3) / 4);
  return fixed + backoffDelay(0, { baseMs: ceiling - fixed, capMs: ceiling - fixed, random });
}

export interface BackoffLoopOptions {
  initialMs: number;
  maxMs: number;
  clock: Clock;
  random: () => number;
  signal?: AbortSignal;
  /** Hears each failed attempt before the wait (the agent logs it and reports `waiting`). */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void | Promise<void>;
}

/**
 * Attests until the key service answers: transport trouble (unreachable, busy, timeout) is
 * retried without limit, a refusal is final. Stops when `signal` aborts.
 */
export async function attestUntilAnswered(once: () => Promise<AttestResult>, o: BackoffLoopOptions): Promise<AttestResult> {
  for (let attempt = 0; ; attempt++) {
    if (o.signal?.aborted) throw abortError(o.signal);
    try {
      const r = await once();
      if (o.signal?.aborted) {
        // Lost the race while the round trip was in flight: nobody will use this key.
        zeroize(r.diskKey);
        throw abortError(o.signal);
      }
      return { ...r, attempts: attempt + 1 };
    } catch (e) {
      if (o.signal?.aborted) throw abortError(o.signal);
      if (isFinalRefusal(e)) throw e;
      const d = retryDelay(attempt, o.initialMs, o.maxMs, o.random);
      await o.onRetry?.(e, attempt + 1, d);
      await o.clock.sleep(d, o.signal).catch(() => {
        throw abortError(o.signal!);
      });
    }
  }
}

function abortError(signal: AbortSignal): SextantError {
  return signal.reason instanceof SextantError ? signal.reason : new SextantError({ code: 'TIMEOUT', message: 'stopped waiting for the key service (aborted)' });
}

/**
 * Races the key service against the recovery endpoint: the first to deliver wins, the other
 * is stopped (the attestation loop through its AbortSignal, the endpoint by close()). A
 * refusal by one side does not end the race while the other can still deliver; if both
 * fail, the key service's error is the one reported.
 */
export async function releaseKey(o: {
  keyservice: (signal: AbortSignal) => Promise<AttestResult>;
  recovery?: () => RecoverySource;
  signal?: AbortSignal;
  log?: (line: string) => void;
}): Promise<KeyRelease> {
  const ac = new AbortController();
  const onParentAbort = (): void => ac.abort(o.signal?.reason);
  o.signal?.addEventListener('abort', onParentAbort, { once: true });
  let recovery: RecoverySource | undefined;
  try {
    const ks = o.keyservice(ac.signal).then((r): KeyRelease => ({ ...r, source: 'keyservice' }));
    if (!o.recovery) return await ks;
    recovery = o.recovery();
    const rs = recovery.secrets.then((s): KeyRelease => ({ diskKey: s.diskKey, clusterId: s.clusterId, warnings: [], attempts: 0, source: 'recovery' }));
    ks.catch((e) => {
      if (!ac.signal.aborted) o.log?.(`key service: ${describe(e)}; the recovery endpoint stays open`);
    });
    rs.catch((e) => {
      if (!ac.signal.aborted) o.log?.(`recovery endpoint: ${describe(e)}; still waiting for the key service`);
    });
    let winner: KeyRelease;
    try {
      winner = await Promise.any([ks, rs]);
    } catch (e) {
      throw (e as AggregateError).errors[0];
    }
    // The loser may still deliver later: its key is wiped unread.
    const loser = winner.source === 'keyservice' ? rs : ks;
    loser.then((r) => zeroize(r.diskKey), () => {});
    return winner;
  } finally {
    o.signal?.removeEventListener('abort', onParentAbort);
    ac.abort(new SextantError({ code: 'TIMEOUT', message: 'key release finished' }));
    await recovery?.close();
  }
}

function describe(e: unknown): string {
  return e instanceof SextantError ? `${e.code}: ${e.message}` : String(e);
}
