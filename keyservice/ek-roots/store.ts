import { X509Certificate } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { hash, toHex } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { GCP_VTPM } from './gcp-vtpm.js';
import { TPM_VENDORS } from './tpm-vendors.js';

/**
 * Named, versioned sets of EK certificate authorities (`--ek-ca-store NAME`): each CA pinned
 * by the SHA-256 of its DER certificate, with where it came from. The certificates are read
 * at start from directories (the store's defaults, e.g. where a Debian package installs them,
 * or --ek-ca-store-dir); only files whose fingerprint is pinned become trust anchors, so a
 * directory can never widen the store.
 */
export interface PinnedEkCa {
  vendor: string;
  role: 'root' | 'intermediate';
  subject: string;
  notAfter: string;
  /** SHA-256 of the DER certificate, lowercase hex. */
  sha256: string;
  /** `debian:<package> <version> <path>` or `github:<repo>@<commit> <path>`. */
  sources: string[];
}

export interface EkRootStore {
  name: string;
  /** The date the pins were last reviewed. */
  version: string;
  description: string;
  /** Where the certificates are when the store's source is installed (`*` matches a version). */
  defaultDirs: string[];
  certificates: PinnedEkCa[];
}

export const EK_ROOT_STORES: Readonly<Record<string, EkRootStore>> = { [TPM_VENDORS.name]: TPM_VENDORS, [GCP_VTPM.name]: GCP_VTPM };

export interface LoadedEkStore {
  store: EkRootStore;
  dirs: string[];
  /** The pinned CAs found, as trust anchors. */
  anchors: X509Certificate[];
  found: PinnedEkCa[];
  missing: PinnedEkCa[];
}

/** Bounds on what a directory scan reads (a store directory is operator input). */
const MAX_FILES = 4000;
const MAX_FILE_BYTES = 256 * 1024;
const MAX_DEPTH = 6;

export function ekRootStore(name: string): EkRootStore {
  const store = EK_ROOT_STORES[name];
  if (!store) throw new SextantError({ code: 'CONFIG_INVALID', message: `unknown EK CA store "${name}" (known: ${Object.keys(EK_ROOT_STORES).join(', ')})` });
  return store;
}

/** Loads store `name` from `dirs` (default: the store's default directories that exist). */
export async function loadEkRootStore(name: string, dirs?: readonly string[]): Promise<LoadedEkStore> {
  const store = ekRootStore(name);
  const searched = dirs?.length ? [...dirs] : (await Promise.all(store.defaultDirs.map(expandStar))).flat();
  const pins = new Map(store.certificates.map((c) => [c.sha256, c]));
  const byPin = new Map<string, X509Certificate>();
  const budget = { files: MAX_FILES };
  for (const dir of searched) {
    for await (const cert of certificatesUnder(dir, budget)) {
      const fp = toHex(hash('sha256', cert.raw));
      if (pins.has(fp) && !byPin.has(fp)) byPin.set(fp, cert);
    }
  }
  const found = store.certificates.filter((c) => byPin.has(c.sha256));
  if (found.length === 0) {
    throw new SextantError({
      code: 'CONFIG_INVALID',
      message: `EK CA store "${name}": none of its ${store.certificates.length} pinned certificates found in ${searched.length ? searched.join(', ') : `its default directories (${store.defaultDirs.join(', ') || 'none'})`}; see docs/tpm.md, "EK CA stores"`,
    });
  }
  return { store, dirs: searched, anchors: found.map((c) => byPin.get(c.sha256)!), found, missing: store.certificates.filter((c) => !byPin.has(c.sha256)) };
}

/** `/a/b-*` -> every existing `/a/b-<x>`; a path without `*` -> itself if it exists. */
async function expandStar(pattern: string): Promise<string[]> {
  const parts = pattern.split('/');
  const i = parts.findIndex((p) => p.includes('*'));
  if (i < 0) return (await isDir(pattern)) ? [pattern] : [];
  const parent = parts.slice(0, i).join('/') || '/';
  const [pre, post] = parts[i].split('*');
  const names = await readdir(parent).catch(() => [] as string[]);
  const rest = parts.slice(i + 1).join('/');
  const out: string[] = [];
  for (const n of names.filter((n) => n.startsWith(pre) && n.endsWith(post ?? '')).sort()) out.push(...(await expandStar(path.join(parent, n, rest))));
  return out;
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

/** Every certificate (DER file, or PEM blocks) in the files under `dir`. Unreadable files are skipped. */
async function* certificatesUnder(dir: string, budget: { files: number }, depth = 0): AsyncGenerator<X509Certificate> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (cause) {
    throw new SextantError({ code: 'CONFIG_INVALID', message: `EK CA store directory ${dir} is not readable`, cause });
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && depth < MAX_DEPTH) yield* certificatesUnder(p, budget, depth + 1);
    if (!e.isFile() || budget.files-- <= 0) continue;
    const bytes = (await stat(p)).size <= MAX_FILE_BYTES ? await readFile(p).catch(() => undefined) : undefined;
    if (bytes) yield* parseCertificates(bytes);
  }
}

function* parseCertificates(bytes: Buffer): Generator<X509Certificate> {
  const blocks: (Buffer | string)[] = bytes[0] === 0x30 ? [bytes] : (bytes.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []);
  for (const b of blocks) {
    try {
      yield new X509Certificate(b);
    } catch {
      // not a certificate: a README, a key, a CRL
    }
  }
}
