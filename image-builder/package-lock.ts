import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { SextantError } from '../lib/errors.js';
import { sha256File } from '../lib/hash-file.js';

/** One .deb that went into the image, pinned by version and content hash. */
export interface LockedPackage {
  name: string;
  version: string;
  architecture: string;
  sha256: string;
}

export interface PackageLock {
  lockVersion: 1;
  distribution: string;
  release: string;
  packages: LockedPackage[];
}

interface MkosiManifest {
  config?: { distribution?: string; release?: string };
  packages?: { type?: string; name: string; version: string; architecture: string }[];
}


/** apt stores `1:2.3` as `1%3a2.3` in archive file names. */
function debFileName(p: { name: string; version: string; architecture: string }): string {
  return `${p.name}_${p.version.replace(/:/g, '%3a')}_${p.architecture}.deb`;
}

async function findDebs(cacheDir: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.deb')) found.set(e.name, p);
    }
  }
  if (existsSync(cacheDir)) await walk(cacheDir);
  return found;
}

/** Builds the lock from mkosi's JSON manifest and the .debs in the package cache. */
export async function lockFromManifest(manifestFile: string, packageCacheDir: string): Promise<PackageLock> {
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as MkosiManifest;
  const debs = await findDebs(packageCacheDir);
  const packages: LockedPackage[] = [];
  const missing: string[] = [];
  for (const p of manifest.packages ?? []) {
    const file = debs.get(debFileName(p));
    if (!file) {
      missing.push(`${p.name}=${p.version}`);
      continue;
    }
    packages.push({ name: p.name, version: p.version, architecture: p.architecture, sha256: await sha256File(file) });
  }
  if (missing.length > 0) {
    throw new SextantError({
      code: 'BUILD_FAILED',
      message: `package cache ${packageCacheDir} lacks the .deb of ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`,
    });
  }
  packages.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    lockVersion: 1,
    distribution: manifest.config?.distribution ?? 'debian',
    release: manifest.config?.release ?? '',
    packages,
  };
}

export function parsePackageLock(text: string, source: string): PackageLock {
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch (cause) {
    throw new SextantError({ code: 'CONFIG_INVALID', message: `${source}: not JSON`, cause });
  }
  const lock = x as PackageLock;
  const bad = (why: string): never => {
    throw new SextantError({ code: 'CONFIG_INVALID', message: `${source}: ${why}` });
  };
  if (lock?.lockVersion !== 1) bad('lockVersion must be 1');
  if (!Array.isArray(lock.packages)) bad('packages must be a list');
  lock.packages.forEach((p, i) => {
    for (const k of ['name', 'version', 'architecture', 'sha256'] as const) {
      if (typeof p?.[k] !== 'string' || p[k] === '') bad(`packages[${i}].${k} missing`);
    }
    if (!/^[0-9a-f]{64}$/.test(p.sha256)) bad(`packages[${i}].sha256 is not a SHA-256 hex digest`);
  });
  return lock;
}

export interface LockDifference {
  name: string;
  expected?: string;
  actual?: string;
}

/** What differs between the lock a build was asked to follow and what it used. */
export function diffLocks(expected: PackageLock, actual: PackageLock): LockDifference[] {
  const show = (p?: LockedPackage): string | undefined => p && `${p.version} sha256:${p.sha256.slice(0, 16)}`;
  const a = new Map(actual.packages.map((p) => [p.name, p]));
  const e = new Map(expected.packages.map((p) => [p.name, p]));
  const out: LockDifference[] = [];
  for (const name of [...new Set([...a.keys(), ...e.keys()])].sort()) {
    const x = e.get(name);
    const y = a.get(name);
    if (!x || !y || x.version !== y.version || x.sha256 !== y.sha256) out.push({ name, expected: show(x), actual: show(y) });
  }
  return out;
}

/** `name=version` specs that make apt install exactly the locked versions. */
export function pinnedPackageSpecs(lock: PackageLock): string[] {
  return lock.packages.map((p) => `${p.name}=${p.version}`);
}
