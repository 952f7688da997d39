import { DIGEST_SIZE, fromHex, toHex } from '../../lib/bytes.js';
import { extendAll } from '../pcr/extend.js';
import { IssueList } from './errors.js';
import {
  checkHex,
  checkNonEmptyString,
  describeValue,
  isPcrKey,
  isRecord,
  joinPath,
  rejectUnknownKeys,
} from './fields.js';
import {
  MEASUREMENT_BANKS,
  MEASUREMENT_FILE_VERSION,
  type ManifestEvent,
  type MeasurementBank,
  type MeasurementFile,
} from './types.js';

const TOP_KEYS = ['version', 'image', 'bank', 'boot', 'pcrs', 'metadata'] as const;
const BOOT_KEYS = ['pcrPhases', 'secureBoot'] as const;
const IMAGE_KEYS = ['name', 'version', 'ukiSha256', 'diskImageSha256', 'stubVersion'] as const;
const PCR_KEYS = ['expected', 'enforced', 'events'] as const;
const EVENT_KEYS = ['type', 'digest', 'description', 'component'] as const;

/** Events that carry information but are never extended into a PCR. */
const NOT_EXTENDED = new Set(['EV_NO_ACTION']);

const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/**
 * Checks that `x` is a valid measurements file. Lists every invalid field in one
 * MeasurementsInvalidError (code MEASUREMENTS_INVALID); throws nothing else. Beyond the
 * shape it checks consistency: a PCR with an event manifest must equal the replay of it.
 */
export function assertMeasurementFile(x: unknown, what = 'measurements file'): asserts x is MeasurementFile {
  const issues = new IssueList();
  if (!isRecord(x)) {
    issues.add('', `expected a JSON object, got ${describeValue(x)}`);
    issues.throwIfAny(what);
    return;
  }
  rejectUnknownKeys(x, TOP_KEYS, '', issues);
  if (x.version !== MEASUREMENT_FILE_VERSION) {
    issues.add('version', `expected ${MEASUREMENT_FILE_VERSION}, got ${describeValue(x.version)}`);
  }
  checkImage(x.image, issues);
  const bank = checkBank(x.bank, issues);
  if (x.boot !== undefined) checkBoot(x.boot, issues);
  checkPcrs(x.pcrs, bank, issues);
  if (x.metadata !== undefined) checkMetadata(x.metadata, issues);
  issues.throwIfAny(what);
}

function checkImage(image: unknown, issues: IssueList): void {
  if (!isRecord(image)) {
    issues.add('image', `expected an object, got ${describeValue(image)}`);
    return;
  }
  rejectUnknownKeys(image, IMAGE_KEYS, 'image', issues);
  checkNonEmptyString(image.name, 'image.name', issues);
  checkNonEmptyString(image.version, 'image.version', issues);
  if (image.ukiSha256 !== undefined) checkHex(image.ukiSha256, 32, 'image.ukiSha256', issues);
  if (image.diskImageSha256 !== undefined) checkHex(image.diskImageSha256, 32, 'image.diskImageSha256', issues);
  if (image.stubVersion !== undefined) checkNonEmptyString(image.stubVersion, 'image.stubVersion', issues);
}

function checkBoot(boot: unknown, issues: IssueList): void {
  if (!isRecord(boot)) {
    issues.add('boot', `expected an object {pcrPhases?, secureBoot?}, got ${describeValue(boot)}`);
    return;
  }
  rejectUnknownKeys(boot, BOOT_KEYS, 'boot', issues);
  if (boot.pcrPhases !== undefined) {
    if (!Array.isArray(boot.pcrPhases)) issues.add('boot.pcrPhases', `expected an array of strings, got ${describeValue(boot.pcrPhases)}`);
    else boot.pcrPhases.forEach((p, i) => checkNonEmptyString(p, joinPath('boot.pcrPhases', i), issues));
  }
  if (boot.secureBoot !== undefined && typeof boot.secureBoot !== 'boolean') {
    issues.add('boot.secureBoot', `expected true or false, got ${describeValue(boot.secureBoot)}`);
  }
}

function checkBank(bank: unknown, issues: IssueList): MeasurementBank | undefined {
  const known = MEASUREMENT_BANKS.find((b) => b === bank);
  if (!known) issues.add('bank', `expected one of ${MEASUREMENT_BANKS.join(', ')}, got ${describeValue(bank)}`);
  return known;
}

function checkPcrs(pcrs: unknown, bank: MeasurementBank | undefined, issues: IssueList): void {
  if (!isRecord(pcrs)) {
    issues.add('pcrs', `expected an object keyed by PCR index, got ${describeValue(pcrs)}`);
    return;
  }
  const keys = Object.keys(pcrs);
  if (keys.length === 0) issues.add('pcrs', 'expected at least one PCR');
  for (const key of keys) {
    const path = joinPath('pcrs', key);
    if (!isPcrKey(key)) issues.add(path, 'PCR index must be a decimal number 0-23 without leading zeros');
    checkPcr(pcrs[key], bank, path, issues);
  }
}

function checkPcr(pcr: unknown, bank: MeasurementBank | undefined, path: string, issues: IssueList): void {
  if (!isRecord(pcr)) {
    issues.add(path, `expected an object {expected, enforced, events?}, got ${describeValue(pcr)}`);
    return;
  }
  rejectUnknownKeys(pcr, PCR_KEYS, path, issues);
  const size = bank && DIGEST_SIZE[bank];
  const expectedOk = size !== undefined && checkHex(pcr.expected, size, joinPath(path, 'expected'), issues);
  if (typeof pcr.enforced !== 'boolean') {
    issues.add(joinPath(path, 'enforced'), `expected true or false, got ${describeValue(pcr.enforced)}`);
  }
  if (pcr.events === undefined) return;
  const eventsPath = joinPath(path, 'events');
  if (!Array.isArray(pcr.events)) {
    issues.add(eventsPath, `expected an array, got ${describeValue(pcr.events)}`);
    return;
  }
  const before = issues.issues.length;
  pcr.events.forEach((e, i) => checkEvent(e, size, joinPath(eventsPath, i), issues));
  // Only a well-formed manifest can be replayed; otherwise its own issues say enough.
  if (bank && expectedOk && issues.issues.length === before) {
    const replayed = replayManifest(bank, pcr.events as ManifestEvent[]);
    if (replayed !== pcr.expected) {
      issues.add(joinPath(path, 'expected'), `does not equal the replay of ${eventsPath} (${replayed})`);
    }
  }
}

function checkEvent(event: unknown, size: number | undefined, path: string, issues: IssueList): void {
  if (!isRecord(event)) {
    issues.add(path, `expected an object {type, digest, description, component?}, got ${describeValue(event)}`);
    return;
  }
  rejectUnknownKeys(event, EVENT_KEYS, path, issues);
  checkNonEmptyString(event.type, joinPath(path, 'type'), issues);
  if (size !== undefined) checkHex(event.digest, size, joinPath(path, 'digest'), issues);
  if (typeof event.description !== 'string') {
    issues.add(joinPath(path, 'description'), `expected a string, got ${describeValue(event.description)}`);
  }
  if (event.component !== undefined) checkNonEmptyString(event.component, joinPath(path, 'component'), issues);
}

function checkMetadata(metadata: unknown, issues: IssueList): void {
  if (!isRecord(metadata)) {
    issues.add('metadata', `expected an object of strings, got ${describeValue(metadata)}`);
    return;
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') issues.add(joinPath('metadata', k), `expected a string, got ${describeValue(v)}`);
  }
  const created = metadata.created;
  if (typeof created === 'string' && !(RFC3339_UTC.test(created) && !Number.isNaN(Date.parse(created)))) {
    issues.add('metadata.created', `expected an RFC 3339 UTC time like 2026-01-31T12:00:00Z, got ${describeValue(created)}`);
  }
}

/** The PCR value a manifest yields: every extended event's digest folded in from zero. */
export function replayManifest(bank: MeasurementBank, events: readonly ManifestEvent[]): string {
  const digests = events.filter((e) => !NOT_EXTENDED.has(e.type)).map((e) => fromHex(e.digest));
  return toHex(extendAll(bank, digests));
}
