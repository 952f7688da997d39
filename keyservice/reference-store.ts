import { watchFile, unwatchFile } from 'node:fs';
import type { ReferenceSet } from '../attestation/policy/reference.js';
import type { SignedMeasurementsBytes, VerifiedMeasurements } from '../attestation/policy/load-reference.js';
import { SextantError } from '../lib/errors.js';
import type { MeasurementSetView } from './admin/client.js';
import { compareImageVersions, parseImageVersion } from './image-version.js';

/**
 * The accepted measurement sets, ordered by image version (docs/rollout.md): one `current`,
 * older ones in `overlap` until their window expires (checked at every attestation) or they
 * are retired, and `retired` ones kept for the record. A high-water mark (the newest version
 * ever accepted, and its file's SHA-256) refuses an older file (MEASUREMENTS_ROLLBACK) or
 * another file of the same version (MEASUREMENTS_VERSION_REUSED) unless forced. Every change
 * is checked first (signature, version) and committed (saved, published, a forced one
 * audited) before the sets in force change: a bad file or a failed commit changes nothing.
 */

export type SetState = 'current' | 'overlap' | 'retired';
export type ChangeSource = 'start' | 'file' | 'admin' | 'store';

interface Held {
  v: VerifiedMeasurements;
  signed: SignedMeasurementsBytes;
  state: SetState;
  acceptedUntil?: number;
  loadedAt: number;
}

interface State {
  sets: Held[];
  highWater: { imageVersion: string; sha256: string };
}

/** What is saved (STATE/measurements-rollout.json) and shared (etcd measurements/rollout). */
export interface SavedRollout {
  v: 1;
  highWater: { imageVersion: string; sha256: string };
  sets: { file: string; sig: string; state: SetState; acceptedUntil?: number; loadedAt: number }[];
}

export type RolloutChange =
  | { kind: 'load'; from: ChangeSource; accepted: string; imageVersion: string; previous?: string; overlapUntil?: string; forced?: { highWater: string; reason: string } }
  | { kind: 'retire'; from: ChangeSource; retired: string; imageVersion: string }
  | { kind: 'adopt'; from: 'store'; accepted: string; previous?: string };

export interface ReferenceStoreOptions {
  /** Reads the --measurements file (and its signature) as bytes. */
  readFile: () => Promise<SignedMeasurementsBytes>;
  /** Checks a file's signature with the service's key; throws when it does not verify. */
  verify: (s: SignedMeasurementsBytes, name: string) => VerifiedMeasurements;
  /** How long the replaced set stays accepted after a file reload (and the admin load's default). */
  rolloutMs: number;
  /** An explicitly configured older set, accepted until the service restarts without it. */
  pinnedPrevious?: ReferenceSet;
  now?: () => number;
  /** After a change is in force (logs, deferred audit records). */
  onChange?: (c: RolloutChange) => void;
  /** A file reload refused (the current sets stay). */
  onRefused?: (from: ChangeSource, error: unknown) => void;
  /** How many sets are kept, retired ones dropped oldest first. */
  maxSets?: number;
}

/** Saves and shares a change before it is in force; rejecting refuses the change. */
export type Commit = (next: SavedRollout, change: RolloutChange) => Promise<void>;

export class ReferenceStore {
  private state: State;
  private watched?: string;
  private queue: Promise<unknown> = Promise.resolve();
  private commit: Commit = async () => undefined;

  private constructor(
    first: Held,
    private readonly o: ReferenceStoreOptions,
  ) {
    this.state = { sets: [first], highWater: { imageVersion: first.v.imageVersion, sha256: first.v.sha256 } };
  }

  /** Reads and verifies the --measurements file: a bad signature or version refuses (the service does not start). */
  static async open(o: ReferenceStoreOptions): Promise<ReferenceStore> {
    const signed = await o.readFile();
    const v = o.verify(signed, 'the measurements file');
    parseImageVersion(v.imageVersion);
    return new ReferenceStore({ v, signed, state: 'current', loadedAt: (o.now ?? Date.now)() }, o);
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  setCommit(c: Commit): void {
    this.commit = c;
  }

  private current(): Held {
    return this.state.sets.find((s) => s.state === 'current')!;
  }

  private accepted(h: Held, now: number): boolean {
    return h.state === 'current' || (h.state === 'overlap' && h.acceptedUntil !== undefined && now <= h.acceptedUntil);
  }

  /** The sets accepted now, current first (the refusal names components against it), then the newest overlap. */
  sets(): ReferenceSet[] {
    const now = this.now();
    const overlap = this.state.sets.filter((s) => s.state === 'overlap' && this.accepted(s, now));
    overlap.sort((a, b) => compareImageVersions(b.v.imageVersion, a.v.imageVersion));
    const out = [this.current().v.set, ...overlap.map((s) => s.v.set)];
    if (this.o.pinnedPrevious) out.push(this.o.pinnedPrevious);
    return out;
  }

  private view(h: Held, now = this.now()): MeasurementSetView {
    const state: SetState = h.state === 'overlap' && !this.accepted(h, now) ? 'retired' : h.state;
    return {
      imageVersion: h.v.imageVersion,
      label: h.v.set.label,
      state,
      ...(h.state === 'overlap' && h.acceptedUntil !== undefined && { acceptedUntil: new Date(h.acceptedUntil).toISOString() }),
      loadedAt: new Date(h.loadedAt).toISOString(),
    };
  }

  /** Every set held, newest version first, and the high-water mark. */
  status(): { sets: MeasurementSetView[]; highWaterVersion: string } {
    const now = this.now();
    const sets = [...this.state.sets].sort((a, b) => compareImageVersions(b.v.imageVersion, a.v.imageVersion) || b.loadedAt - a.loadedAt);
    return { sets: sets.map((s) => this.view(s, now)), highWaterVersion: this.state.highWater.imageVersion };
  }

  saved(): SavedRollout {
    return save(this.state);
  }

  /** One change at a time: a load, a retire, an adoption. */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const r = this.queue.then(f, f);
    this.queue = r.catch(() => undefined);
    return r;
  }

  private async apply(next: State, change: RolloutChange): Promise<void> {
    await this.commit(save(next), change);
    this.state = next;
    this.o.onChange?.(change);
  }

  /**
   * Loads a signed file: its signature, its version against the high-water mark, then the
   * commit; the set it replaces stays accepted for `overlapMs` (0: retired at once).
   */
  load(signed: SignedMeasurementsBytes, o: { from: ChangeSource; overlapMs?: number; force?: boolean; name?: string }): Promise<{ loaded: MeasurementSetView; previous?: MeasurementSetView; changed: boolean }> {
    return this.serial(async () => {
      const v = this.o.verify(signed, o.name ?? 'the measurements file');
      parseImageVersion(v.imageVersion);
      const now = this.now();
      const cur = this.current();
      if (cur.v.sha256 === v.sha256) return { loaded: this.view(cur, now), changed: false };
      const hw = this.state.highWater;
      const cmp = compareImageVersions(v.imageVersion, hw.imageVersion);
      let forced: { highWater: string; reason: string } | undefined;
      if (cmp < 0 || (cmp === 0 && v.sha256 !== hw.sha256)) {
        const code = cmp < 0 ? 'MEASUREMENTS_ROLLBACK' : 'MEASUREMENTS_VERSION_REUSED';
        const reason =
          cmp < 0
            ? `image version ${v.imageVersion} is older than ${hw.imageVersion}, the newest this service has accepted`
            : `image version ${v.imageVersion} was accepted with other content (sha256:${hw.sha256.slice(0, 16)}, this file sha256:${v.sha256.slice(0, 16)})`;
        if (!o.force) throw new SextantError({ code, message: `${v.set.label} refused: ${reason}; nothing changed (--force loads it anyway, audited)` });
        forced = { highWater: hw.imageVersion, reason: code };
      }
      const overlapMs = o.overlapMs ?? this.o.rolloutMs;
      const previous: Held = overlapMs > 0 ? { ...cur, state: 'overlap', acceptedUntil: now + overlapMs } : { ...cur, state: 'retired', acceptedUntil: undefined };
      const loaded: Held = { v, signed, state: 'current', loadedAt: now };
      const others = this.state.sets.filter((s) => s !== cur && s.v.sha256 !== v.sha256 && !(s.v.imageVersion === v.imageVersion && forced));
      const next: State = {
        sets: trim([loaded, previous, ...others], this.o.maxSets ?? 8),
        highWater: cmp > 0 ? { imageVersion: v.imageVersion, sha256: v.sha256 } : cmp === 0 ? { imageVersion: hw.imageVersion, sha256: v.sha256 } : hw,
      };
      await this.apply(next, {
        kind: 'load',
        from: o.from,
        accepted: v.set.label,
        imageVersion: v.imageVersion,
        previous: cur.v.set.label,
        ...(previous.acceptedUntil !== undefined && { overlapUntil: new Date(previous.acceptedUntil).toISOString() }),
        ...(forced && { forced }),
      });
      return { loaded: this.view(loaded, now), previous: this.view(previous, now), changed: true };
    });
  }

  /** Ends a set's overlap window now. The current set cannot be retired (load a newer one). */
  retire(imageVersion: string, from: ChangeSource = 'admin'): Promise<{ retired: MeasurementSetView }> {
    return this.serial(async () => {
      parseImageVersion(imageVersion);
      const held = this.state.sets.filter((s) => compareImageVersions(s.v.imageVersion, imageVersion) === 0);
      if (held.length === 0) {
        throw new SextantError({ code: 'MEASUREMENTS_VERSION_UNKNOWN', message: `no measurement set of image version ${imageVersion} is held (${this.state.sets.map((s) => s.v.imageVersion).join(', ')})` });
      }
      if (held.some((s) => s.state === 'current')) {
        throw new SextantError({ code: 'INVALID_ARGUMENT', message: `image version ${imageVersion} is the current set: load a newer one first` });
      }
      const target = held.find((s) => s.state === 'overlap') ?? held[0];
      if (target.state === 'retired') return { retired: this.view(target) };
      const retired: Held = { ...target, state: 'retired', acceptedUntil: undefined };
      const next: State = { ...this.state, sets: this.state.sets.map((s) => (s === target ? retired : s)) };
      await this.apply(next, { kind: 'retire', from, retired: target.v.set.label, imageVersion: target.v.imageVersion });
      return { retired: this.view(retired) };
    });
  }

  /**
   * Takes the sets another replica (or this service's last run) saved, each signature checked
   * here; a set that does not verify is dropped. The high-water mark only goes up.
   */
  adopt(doc: SavedRollout, o: { from: 'start' | 'store'; log?: (line: string) => void }): Promise<boolean> {
    return this.serial(async () => {
      const sets: Held[] = [];
      for (const s of doc.sets) {
        const signed = { bytes: Buffer.from(s.file, 'base64'), sig: s.sig };
        try {
          const v = this.o.verify(signed, o.from === 'store' ? 'the measurements another replica published' : 'a saved measurement set');
          parseImageVersion(v.imageVersion);
          sets.push({ v, signed, state: s.state, acceptedUntil: s.acceptedUntil, loadedAt: s.loadedAt });
        } catch (e) {
          o.log?.(`a ${o.from === 'store' ? 'published' : 'saved'} measurement set was dropped: ${(e as Error).message}`);
        }
      }
      if (sets.filter((s) => s.state === 'current').length !== 1) {
        o.log?.(`the ${o.from === 'store' ? 'published' : 'saved'} measurement sets have no single current set that verifies: ignored`);
        return false;
      }
      const mine = this.state.highWater;
      // A saved file is this service's own disk; a published document's high-water mark is
      // not signed, so from the store only a set that verified can raise ours (an etcd writer
      // without the signing key must not be able to make every future load a rollback).
      const claimed = o.from === 'start' ? [doc.highWater] : sets.map((s) => ({ imageVersion: s.v.imageVersion, sha256: s.v.sha256 }));
      let highWater = mine;
      for (const c of claimed) {
        try {
          if (compareImageVersions(c.imageVersion, highWater.imageVersion) > 0) highWater = c;
        } catch {
          /* not a version: keep ours */
        }
      }
      const before = this.current().v.set.label;
      const next: State = { sets, highWater };
      if (JSON.stringify(save(next)) === JSON.stringify(save(this.state))) return false;
      const after = sets.find((s) => s.state === 'current')!.v.set.label;
      // Adopted, not committed: the store already holds it (or it is this service's own file).
      this.state = next;
      if (o.from === 'store' && after !== before) this.o.onChange?.({ kind: 'adopt', from: 'store', accepted: after, previous: before });
      return true;
    });
  }

  /** Loads the --measurements file again (a change: the file watch); a refusal keeps the sets. */
  async reload(from: 'file' | 'start' = 'file'): Promise<void> {
    try {
      await this.load(await this.o.readFile(), { from, overlapMs: this.o.rolloutMs });
    } catch (e) {
      this.o.onRefused?.(from, e);
    }
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

function save(s: State): SavedRollout {
  return {
    v: 1,
    highWater: s.highWater,
    sets: s.sets.map((h) => ({ file: h.signed.bytes.toString('base64'), sig: h.signed.sig, state: h.state, ...(h.acceptedUntil !== undefined && { acceptedUntil: h.acceptedUntil }), loadedAt: h.loadedAt })),
  };
}

/** Keeps at most `max` sets: the current and overlap ones always, then the newest retired ones. */
function trim(sets: Held[], max: number): Held[] {
  const live = sets.filter((s) => s.state !== 'retired');
  const retired = sets.filter((s) => s.state === 'retired').sort((a, b) => b.loadedAt - a.loadedAt);
  return [...live, ...retired.slice(0, Math.max(0, max - live.length))];
}
