import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { SextantError } from '../../lib/errors.js';
import { UUID_RE } from '../../protocol/validate.js';
import { broken, checkStoredBinding, RevisionedBindingStore } from './revisioned-store.js';
import type { DiskBinding } from './store.js';

/**
 * The disk-binding store in the key service's state directory:
 *
 *   STATE/disk-bindings/<uuid>/0000000001.json   revision 1 (first release)
 *   STATE/disk-bindings/<uuid>/0000000002.json   revision 2 (an admin's rebind) ...
 *
 * The current binding is the highest revision. A revision file is never rewritten: it is
 * written to a temporary file, fsynced, then hard-linked to its final name and the folder
 * fsynced. link(2) fails with EEXIST when the name exists, which makes "create revision N+1"
 * an atomic compare-and-set across threads and processes (the running service, `sextant
 * recover`, the admin's rebind): of two nodes first asking for one UUID exactly one link
 * succeeds. rename(2) would overwrite, so it cannot be the compare. A crash at any step
 * leaves either no revision N+1 (nothing was acknowledged) or a complete, fsynced one; the
 * only debris is a temporary file, which is never read.
 */

const REVISION_RE = /^(\d{10})\.json$/;
const TMP_PREFIX = '.tmp-';

export interface LocalBindingStoreOptions {
  now?: () => Date;
  /** Test hook: called before each durable step; a throw there stands for a crash at that point. */
  step?: (name: 'mkdir' | 'write-tmp' | 'fsync-tmp' | 'link' | 'fsync-dir') => void;
}

export class LocalBindingStore extends RevisionedBindingStore {
  constructor(
    readonly dir: string,
    private readonly o: LocalBindingStoreOptions = {},
  ) {
    super(o.now ?? (() => new Date()));
  }

  /** `STATE/disk-bindings`, the layout `sextant keyservice` and `sextant recover` share. */
  static inStateDir(stateDir: string, o?: LocalBindingStoreOptions): LocalBindingStore {
    return new LocalBindingStore(path.join(stateDir, 'disk-bindings'), o);
  }

  async get(diskUuid: string): Promise<DiskBinding | undefined> {
    const d = this.uuidDir(diskUuid);
    let names: string[];
    try {
      names = await readdir(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioFailed(`cannot read ${d}`, e);
    }
    const revisions = names.map((n) => REVISION_RE.exec(n)?.[1]).filter((r): r is string => r !== undefined).sort();
    const last = revisions.at(-1);
    return last === undefined ? undefined : this.readRevision(diskUuid, Number(last));
  }

  async list(): Promise<DiskBinding[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioFailed(`cannot read ${this.dir}`, e);
    }
    const out: DiskBinding[] = [];
    for (const n of names.filter((x) => UUID_RE.test(x)).sort()) {
      const b = await this.get(n);
      if (b) out.push(b);
    }
    return out;
  }

  /** Creates the binding's revision file; false when it exists already (the compare failed). */
  protected async tryCreate(binding: DiskBinding): Promise<boolean> {
    const { diskUuid, revision } = binding;
    const d = this.uuidDir(diskUuid);
    let crashed = false;
    const step: NonNullable<LocalBindingStoreOptions['step']> = (name) => {
      try {
        this.o.step?.(name);
      } catch (e) {
        crashed = true;
        throw e;
      }
    };
    step('mkdir');
    await this.ensureDir(d);
    const tmp = path.join(d, `${TMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      const fh = await open(tmp, 'wx', 0o600);
      try {
        step('write-tmp');
        await fh.writeFile(JSON.stringify(binding) + '\n');
        step('fsync-tmp');
        await fh.sync();
      } finally {
        await fh.close();
      }
      step('link');
      try {
        await link(tmp, path.join(d, revisionName(revision)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw e;
      }
      step('fsync-dir');
      await fsyncDir(d);
    } catch (e) {
      if (e instanceof SextantError) throw e;
      throw ioFailed(`cannot write the binding of disk ${diskUuid} in ${d}`, e);
    } finally {
      // Not needed for correctness (temporary names are never read): keeps the folder tidy.
      // After a (simulated) crash nothing more runs, so the temporary file stays as it would.
      if (!crashed) await unlink(tmp).catch(() => undefined);
    }
    return true;
  }

  private async readRevision(diskUuid: string, revision: number): Promise<DiskBinding> {
    const f = path.join(this.uuidDir(diskUuid), revisionName(revision));
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch (e) {
      throw ioFailed(`cannot read ${f}`, e);
    }
    let b: Partial<DiskBinding>;
    try {
      b = JSON.parse(text) as Partial<DiskBinding>;
    } catch {
      throw broken(f, 'not JSON');
    }
    return checkStoredBinding(b, diskUuid, revision, f);
  }

  private uuidDir(diskUuid: string): string {
    // The UUID becomes a path: only the canonical lowercase form the protocol accepts.
    if (!UUID_RE.test(diskUuid)) throw new SextantError({ code: 'INVALID_ARGUMENT', message: `not a lowercase disk UUID: "${diskUuid.slice(0, 80)}"` });
    return path.join(this.dir, diskUuid);
  }

  /** mkdir -p with the new entries made durable (fsync of each parent that gained one). */
  private async ensureDir(d: string): Promise<void> {
    try {
      const first = await mkdir(d, { recursive: true, mode: 0o700 });
      if (first === undefined) return;
      for (let p = d; p.length >= first.length; p = path.dirname(p)) await fsyncDir(path.dirname(p));
    } catch (e) {
      throw ioFailed(`cannot create ${d}`, e);
    }
  }
}

function revisionName(revision: number): string {
  return String(revision).padStart(10, '0') + '.json';
}

async function fsyncDir(d: string): Promise<void> {
  const fh = await open(d, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function ioFailed(message: string, cause: unknown): SextantError {
  return new SextantError({ code: 'IO_FAILED', message, cause });
}
