/**
 * `measurements verify --image` (compareWithPrediction: the signed file against a recomputation
 * of the image) and a key service refusal (checkMeasurements + nameChangedComponents: the
 * signed file against the node's firmware log) must name the same components for the same
 * change. Real data: the signed file describes the trixie-stub257 boot, the node booted the
 * sid-stub262 UKI (test/fixtures/boots: real OVMF + swtpm boots of two UKIs that differ in the
 * stub: its PE image hash in PCR 4, its .sbat in PCR 11, and stub 257's LoadImage of the kernel).
 */
import test from 'ava';
import { toHex } from '../../../lib/bytes.js';
import { describeEvent, isExtended, parseEventLog } from '../../../measurements/eventlog/index.js';
import { measurementFileFromPrediction } from '../../../measurements/format/from-prediction.js';
import type { MeasurementFile } from '../../../measurements/format/types.js';
import type { PcrPrediction } from '../../../measurements/format/prediction.js';
import { compareWithPrediction } from '../../../measurements/verify/compare.js';
import { checkMeasurements } from '../../../attestation/policy/check-measurements.js';
import { nameChangedComponents } from '../../../attestation/policy/name-components.js';
import { PcrMismatchError } from '../../../attestation/policy/pcr-mismatch.js';
import type { ReferenceSet } from '../../../attestation/policy/reference.js';
import { loadBootFixture, type BootFixture } from '../../helpers/boot/fixtures.js';

const PREDICTED_PCRS = [4, 9, 11];

/**
 * A firmware log event described as measurements/uki/precompute.ts describes the event it
 * predicts (the precompute's digests equal the real boot's: test/integration/boot.test.ts).
 */
function asPredicted(typeName: string, logged: string): string {
  if (typeName === 'EV_EFI_BOOT_SERVICES_APPLICATION') return /BOOTX64\.EFI/.test(logged) ? 'UKI (Authenticode)' : '.linux kernel loaded by the stub via LoadImage (Authenticode)';
  if (logged.includes('LOADED_IMAGE::LoadOptions')) return 'LOADED_IMAGE::LoadOptions';
  if (logged.includes('Linux initrd')) return 'Linux initrd';
  return logged.replace(/^"(.*)"$/, '$1');
}

/** What a recomputation of the booted image yields, read off its real boot. */
function predictionOf(boot: BootFixture): PcrPrediction {
  const events = parseEventLog(boot.eventlog)
    .events.filter((e) => PREDICTED_PCRS.includes(e.pcr) && isExtended(e))
    .map((e) => ({ pcr: e.pcr, type: e.typeName, digest: toHex(e.digests.find((d) => d.alg === 'sha256')!.digest), description: asPredicted(e.typeName, describeEvent(e)) }));
  return { pcrs: Object.fromEntries(PREDICTED_PCRS.map((p) => [String(p), boot.pcrs.sha256![String(p)]])), events };
}

/** The key service's reference set for a signed file (as attestation/policy/load-reference.ts builds it). */
function referenceOf(file: MeasurementFile): ReferenceSet {
  const pcrs: ReferenceSet['pcrs'] = {};
  for (const [i, e] of Object.entries(file.pcrs)) pcrs[i] = { expected: e.expected, enforced: e.enforced, ...(e.events && { events: e.events }) };
  return { label: `${file.image.name} ${file.image.version}`, pcrs };
}

test('a real changed boot: verify --image and the key service refusal name the same components', async (t) => {
  const signed = await loadBootFixture('trixie-stub257');
  const booted = await loadBootFixture('sid-stub262');
  const file = measurementFileFromPrediction(predictionOf(signed), { image: { name: 'node', version: '1' }, bank: 'sha256' });

  // measurements verify --image: the file against the booted image's recomputation.
  const report = compareWithPrediction(file, predictionOf(booted));
  t.false(report.ok);
  const byVerify = report.rows
    .filter((r) => r.verdict === 'mismatch')
    .flatMap((r) => r.differences.map((d) => `PCR ${r.pcr} ${d.component} ${d.kind === 'changed' ? 'mismatch' : d.kind}`));

  // The key service: the quoted PCRs against the file, then the components from the firmware log.
  const set = referenceOf(file);
  const e = t.throws(() => checkMeasurements([set], booted.pcrs.sha256!), { instanceOf: PcrMismatchError }) as PcrMismatchError;
  t.deepEqual(e.mismatches.map((m) => m.pcr), [4, 11]);
  const byRefusal = nameChangedComponents(set, e.mismatches, booted.eventlog).map((c) => `PCR ${c.pcr} ${c.component} ${c.status}`);

  t.deepEqual(byRefusal, byVerify);
  // What changed, by name: the UKI (another stub) and the kernel LoadImage only stub 257 logs in PCR 4, the stub's .sbat in PCR 11.
  t.deepEqual(byRefusal, ['PCR 4 uki mismatch', 'PCR 4 .linux missing', 'PCR 11 .sbat mismatch']);
});
