import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fail, SextantError } from '../lib/errors.js';
import { parseMeasurementFile, type MeasurementFile } from '../measurements/format/index.js';
import { diffEvents, eventName, type EventDifference } from '../measurements/verify/index.js';
import { alignEvents } from '../measurements/eventlog/align.js';
import type { ManifestEvent } from '../measurements/format/types.js';
import { ARTIFACTS } from './build.js';
import { parseSums } from './reproduce.js';

/** A named input or output that is present in one release and not (or otherwise) in the other. */
export interface Change {
  name: string;
  from?: string;
  to?: string;
}

export interface PcrChange {
  pcr: string;
  from?: string;
  to?: string;
  /** The measured parts that differ, by component (".cmdline", ".initrd", "kernel (Authenticode)"). */
  events: EventDifference[];
  /**
   * PCR 7 only: the Secure Boot variables (SecureBoot, PK, KEK, db, dbx) and authorities
   * (`authority <subject>`) whose measurement differs, in log order.
   */
  secureBoot?: string[];
}

/** Why two releases measure differently: inputs (packages, components, tools) and outputs. */
export interface ReleaseDiff {
  identical: boolean;
  packages: Change[];
  components: Change[];
  /** The agent files built from the checkout (bundle, wrapper, unit). */
  agent: Change[];
  tools: Change[];
  /** manifest.json's Secure Boot record: signed or not, the signer, the key databases' digests. */
  secureBoot: Change[];
  artifacts: Change[];
  pcrs: PcrChange[];
}

interface Manifest {
  packages: string[];
  components: { name: string; sha256: string; included: boolean }[];
  tools: Record<string, string>;
  /** Absent in releases built before the agent files were recorded. */
  agent?: Record<string, string>;
  secureBoot?: { signed?: boolean; signer?: { subject?: string; sha256Fingerprint?: string }; keyDatabases?: Record<string, string | null> };
}

/** The manifest of a bare measurements file: nothing but the measurements to compare. */
const NO_MANIFEST: Manifest = { packages: [], components: [], tools: {} };

/** A release folder, or a bare measurements file (e.g. one made from a new key folder before a rollout). */
async function readRelease(dir: string): Promise<{ manifest: Manifest; measurements: MeasurementFile; sums: Map<string, string> }> {
  const isFile = await stat(dir).then(
    (s) => s.isFile(),
    () => false,
  );
  if (isFile) return { manifest: NO_MANIFEST, measurements: parseMeasurementFile(await readFile(dir), dir), sums: new Map() };
  const read = async (name: string): Promise<Buffer> => {
    try {
      return await readFile(path.join(dir, name));
    } catch (cause) {
      throw new SextantError({ code: 'FILE_NOT_FOUND', message: `${dir} is not a release folder: cannot read ${name}`, cause });
    }
  };
  let manifest: Manifest;
  try {
    const m = JSON.parse((await read(ARTIFACTS.manifest)).toString('utf8')) as Partial<Manifest>;
    if (!Array.isArray(m.packages) || !Array.isArray(m.components) || typeof m.tools !== 'object' || m.tools === null) fail('CONFIG_INVALID', `${path.join(dir, ARTIFACTS.manifest)} is not a sextant image manifest: missing packages, components or tools`);
    manifest = m as Manifest;
  } catch (cause) {
    if (cause instanceof SextantError) throw cause;
    throw new SextantError({ code: 'CONFIG_INVALID', message: `${path.join(dir, ARTIFACTS.manifest)} is not a sextant image manifest`, cause });
  }
  const measurements = parseMeasurementFile(await read(ARTIFACTS.measurements), path.join(dir, ARTIFACTS.measurements));
  const sums = parseSums((await read(ARTIFACTS.sums)).toString('utf8'));
  return { manifest, measurements, sums };
}

function diffMaps(a: Map<string, string>, b: Map<string, string>): Change[] {
  const out: Change[] = [];
  for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (a.get(name) !== b.get(name)) out.push({ name, from: a.get(name), to: b.get(name) });
  }
  return out;
}

const packageMap = (m: Manifest): Map<string, string> =>
  new Map(m.packages.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
/**
 * The PCR 7 variables and authorities that differ, by name on both sides: a changed authority
 * is the entry that went and the one that came (a changed variable keeps its name).
 */
function secureBootChanges(a: ManifestEvent[], b: ManifestEvent[]): string[] {
  const names: string[] = [];
  for (const r of alignEvents(a, b, { expected: eventName, actual: eventName })) {
    if (r.status === 'match') continue;
    for (const e of [r.expected, r.actual]) if (e && !names.includes(eventName(e)) && eventName(e) !== 'separator') names.push(eventName(e));
  }
  return names;
}

function secureBootMap(m: Manifest): Map<string, string> {
  const sb = m.secureBoot;
  const out = new Map<string, string>();
  if (!sb) return out;
  out.set('signed', String(sb.signed === true));
  if (sb.signer?.subject) out.set('signer', sb.signer.subject);
  if (sb.signer?.sha256Fingerprint) out.set('signer certificate sha256', sb.signer.sha256Fingerprint);
  for (const [name, digest] of Object.entries(sb.keyDatabases ?? {})) out.set(`key database ${name}`, digest ?? 'absent');
  return out;
}

const componentMap = (m: Manifest): Map<string, string> =>
  new Map(m.components.map((c) => [c.name, c.included ? c.sha256 : `${c.sha256} (not included)`]));

/**
 * Compares two release folders (or measurements files: then only the PCRs): which packages, components and tools changed, and which
 * PCRs and measured components that moved. Pure reading, nothing is rebuilt.
 */
export async function diffReleases(oldDir: string, newDir: string): Promise<ReleaseDiff> {
  const [a, b] = await Promise.all([readRelease(oldDir), readRelease(newDir)]);
  const pcrs: PcrChange[] = [];
  const indexes = [...new Set([...Object.keys(a.measurements.pcrs), ...Object.keys(b.measurements.pcrs)])].sort((x, y) => Number(x) - Number(y));
  for (const pcr of indexes) {
    const x = a.measurements.pcrs[pcr];
    const y = b.measurements.pcrs[pcr];
    if (x?.expected === y?.expected) continue;
    const events = x?.events && y?.events ? diffEvents(x.events, y.events) : [];
    pcrs.push({ pcr, from: x?.expected, to: y?.expected, events, ...(pcr === '7' && { secureBoot: secureBootChanges(x?.events ?? [], y?.events ?? []) }) });
  }
  const packages = diffMaps(packageMap(a.manifest), packageMap(b.manifest));
  const components = diffMaps(componentMap(a.manifest), componentMap(b.manifest));
  const agent = diffMaps(new Map(Object.entries(a.manifest.agent ?? {})), new Map(Object.entries(b.manifest.agent ?? {})));
  const tools = diffMaps(new Map(Object.entries(a.manifest.tools)), new Map(Object.entries(b.manifest.tools)));
  const secureBoot = diffMaps(secureBootMap(a.manifest), secureBootMap(b.manifest));
  const artifacts = diffMaps(a.sums, b.sums);
  return {
    identical: packages.length + components.length + agent.length + tools.length + secureBoot.length + artifacts.length + pcrs.length === 0,
    packages,
    components,
    agent,
    tools,
    secureBoot,
    artifacts,
    pcrs,
  };
}
