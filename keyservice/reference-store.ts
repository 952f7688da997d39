import { watchFile, unwatchFile } from 'node:fs';
import type { ReferenceSet } from '../attestation/policy/reference.js';

/**
 * The accepted measurement sets: the current one, and during a rollout window the one it
 * replaced (or an explicitly configured previous set). A changed file is loaded and its
 * signature checked *before* it replaces the current set; a bad file keeps the old one.
 */
export interface ReferenceStoreOptions {
  load: () => Promise<ReferenceSet>;
  /** How long the replaced set stays accepted after a reload. */
  rolloutMs: number;
  /** An explicitly configured older set, accepted until the service restarts without it. */
  pinnedPrevious?: ReferenceSet;
  now?: () => number;
  onReload?: (r: { ok: true; label: string; previous: string } | { ok: false; error: unknown }) => void;
}

export class ReferenceStore {
  private current: ReferenceSet;
  private previous?: { set: ReferenceSet; until: number };
  private watched?: string;
  private reloading: Promise<void> = Promise.resolve();

  private constructor(
    first: ReferenceSet,
    private readonly o: ReferenceStoreOptions,
  ) {
    this.current = first;
  }

  static async open(o: ReferenceStoreOptions): Promise<ReferenceStore> {
    return new ReferenceStore(await o.load(), o);
  }

  /** Newest first. */
  sets(): ReferenceSet[] {
    const now = (this.o.now ?? Date.now)();
    const out = [this.current];
    if (this.previous && now <= this.previous.until) out.push(this.previous.set);
    if (this.o.pinnedPrevious) out.push(this.o.pinnedPrevious);
    return out;
  }

  /** Loads the file again; replaces the current set only when it loads and verifies. */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(async () => {
      try {
        const next = await this.o.load();
        if (next.label === this.current.label) return;
        const prev = this.current;
        this.previous = { set: prev, until: (this.o.now ?? Date.now)() + this.o.rolloutMs };
        this.current = next;
        this.o.onReload?.({ ok: true, label: next.label, previous: prev.label });
      } catch (error) {
        this.o.onReload?.({ ok: false, error });
      }
    });
    return this.reloading;
  }

  /** Polls the file (and its signature) for changes; polling survives editors that replace files. */
  watch(files: string[], intervalMs = 1000): void {
    this.unwatch();
    this.watched = files.join('\0');
    for (const f of files) watchFile(f, { interval: intervalMs, persistent: false }, () => void this.reload());
  }

  unwatch(): void {
    if (this.watched) for (const f of this.watched.split('\0')) unwatchFile(f);
    this.watched = undefined;
  }
}
