/**
 * A TCTI carries one command at a time (a second transmit before the receive is a sequence
 * error), and an operation of several commands (a policy session, then the command it
 * authorizes) must not be split by another caller's commands: every use of a connection runs
 * as one job of this queue, strictly one after another. A job that
 * enqueues another job on the same queue would wait for itself forever: that is refused.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { SextantError } from '../../lib/errors.js';

export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private readonly current = new AsyncLocalStorage<SerialQueue>();
  private waiting = 0;

  /** Runs `job` after every job queued before it has settled. */
  run<T>(job: () => Promise<T>): Promise<T> {
    if (this.current.getStore() === this) {
      return Promise.reject(
        new SextantError({ code: 'INTERNAL', message: 'TPM queue: a job tried to queue another job (it would deadlock)' }),
      );
    }
    this.waiting++;
    const result = this.tail.then(() => {
      this.waiting--;
      return this.current.run(this, job);
    });
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** True while the caller runs inside one of this queue's jobs. */
  get insideJob(): boolean {
    return this.current.getStore() === this;
  }

  /** Jobs queued and not yet started (for diagnostics and tests). */
  get pending(): number {
    return this.waiting;
  }
}
