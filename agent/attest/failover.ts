import { fail, SextantError } from '../../lib/errors.js';
import { isFinalRefusal, type PinnedEndpoint } from './transport.js';

/**
 * The key service endpoints an agent may use (replicas of one service: same master secret,
 * same TLS certificate), in the order configured. A round starts at the endpoint that
 * answered last, so a node keeps talking to the replica that knows its sessions (the
 * confirm round goes where the key was released) and only moves on when that one fails.
 */
export class Endpoints {
  readonly list: readonly PinnedEndpoint[];
  #at = 0;

  constructor(list: readonly PinnedEndpoint[]) {
    if (list.length === 0) fail('INVALID_ARGUMENT', 'no key service endpoint');
    this.list = list;
  }

  static of(e: PinnedEndpoint | Endpoints): Endpoints {
    return e instanceof Endpoints ? e : new Endpoints([e]);
  }

  /** The endpoint the next round starts at. */
  get current(): PinnedEndpoint {
    return this.list[this.#at];
  }

  /**
   * One round: tries each endpoint once, from the current one on, until one answers. A
   * refusal is final (replicas share one policy: asking another would not change the
   * verdict); transport trouble moves on to the next endpoint at once, without waiting, and
   * when every endpoint failed the last error is thrown for the caller's backoff to handle.
   */
  async round<T>(f: (endpoint: PinnedEndpoint) => Promise<T>, onFailover?: (from: PinnedEndpoint, to: PinnedEndpoint, error: unknown) => void): Promise<{ value: T; endpoint: PinnedEndpoint }> {
    for (let tried = 1; ; tried++) {
      const endpoint = this.current;
      try {
        return { value: await f(endpoint), endpoint };
      } catch (e) {
        if (isFinalRefusal(e)) throw e;
        this.#at = (this.#at + 1) % this.list.length;
        // Every endpoint failed: the next round starts where this one did.
        if (tried >= this.list.length) throw e;
        onFailover?.(endpoint, this.current, e);
      }
    }
  }
}

/** One line for a failover note (the agent's debug log). */
export function describeFailover(from: PinnedEndpoint, to: PinnedEndpoint, e: unknown): string {
  return `key service ${from.url}: ${e instanceof SextantError ? e.code : String(e)}; trying ${to.url}`;
}
