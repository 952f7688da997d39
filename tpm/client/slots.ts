/**
 * A TPM without a resource manager holds only a few transient objects at once (swtpm and
 * many hardware TPMs: 3, TPM_PT_HR_TRANSIENT_MIN). Callers that each load a key concurrently
 * would get TPM_RC_OBJECT_MEMORY, so object slots are handed out first come, first served.
 * An operation takes all the slots it needs at once (e.g. EK + AK for credential activation):
 * taking them one by one could deadlock callers holding one slot and waiting for another.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { SextantError } from '../../lib/errors.js';

export class ObjectSlots {
  private free: number;
  private readonly waiting: { n: number; wake: () => void }[] = [];
  private readonly holder = new AsyncLocalStorage<true>();

  constructor(readonly capacity: number) {
    this.free = capacity;
  }

  /** Runs `fn` while holding `n` slots. */
  async with<T>(n: number, fn: () => Promise<T>): Promise<T> {
    if (this.holder.getStore()) {
      throw new SextantError({ code: 'INTERNAL', message: 'TPM keys must be loaded all at once (withPrimaries), not nested' });
    }
    if (n > this.capacity) {
      throw new SextantError({ code: 'TPM_RC', message: `an operation needs ${n} loaded objects; this TPM holds ${this.capacity}` });
    }
    if (this.waiting.length === 0 && this.free >= n) this.free -= n;
    else await new Promise<void>((wake) => this.waiting.push({ n, wake }));
    try {
      return await this.holder.run(true, fn);
    } finally {
      this.free += n;
      while (this.waiting.length && this.waiting[0].n <= this.free) {
        const next = this.waiting.shift()!;
        this.free -= next.n;
        next.wake();
      }
    }
  }
}
