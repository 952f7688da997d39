/**
 * `measurements verify --image` (compareWithPrediction: the signed file against a recomputation
 * of the image) and a key service refusal (checkMeasurements + nameChangedComponents: the
 * signed file against the node's firmware log) must name the same components for the same
 * change. Real data: the signed file is the precompute (`sextant measure uki`) of the
 * trixie-stub257 capture UKI, the node booted the sid-stub262 one (test/fixtures/boots: real
 * OVMF + swtpm boots of two UKIs that differ in the stub: its PE image hash in PCR 4, its .sbat
 * in PCR 11, and stub 257's LoadImage of the kernel). Both UKIs are rebuilt bit-identically from
 * the recorded recipes, so neither side's component names are written here by hand.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { measurementFileFromPrediction } from '../../../measurements/format/from-prediction.js';
import type { PcrPrediction } from '../../../measurements/format/prediction.js';
import { precomputeUkiFile } from '../../../measurements/uki/precompute-file.js';
import { compareWithPrediction } from '../../../measurements/verify/compare.js';
import { checkMeasurements } from '../../../attestation/policy/check-measurements.js';
import { nameChangedComponents } from '../../../attestation/policy/name-components.js';
import { PcrMismatchError } from '../../../attestation/policy/pcr-mismatch.js';
import { referenceSetOf } from '../../../attestation/policy/load-reference.js';
import { CAPTURE_RECIPES, buildCaptureUki } from '../../helpers/boot/capture-uki.js';
import { loadBootFixture, type BootFixture } from '../../helpers/boot/fixtures.js';

/**
 * What `measurements verify --image` recomputes for the UKI a fixture booted: the precompute
 * of that UKI rebuilt from the recorded recipe, or undefined (with the reason) when this host's
 * inputs drifted since the capture and the rebuild is another file.
 */
async function predictionOf(boot: BootFixture, dir: string): Promise<PcrPrediction | string> {
  const built = await buildCaptureUki(CAPTURE_RECIPES.find((r) => r.name === boot.name)!, path.join(dir, `${boot.name}.efi`));
  if (built.recipe.uki.sha256 !== boot.boot.uki.uki.sha256) {
    return `rebuilt UKI ${built.recipe.uki.sha256} differs from the one ${boot.name} booted: host inputs changed since the capture; rerun node scripts/boot/capture-fixtures.mjs ${boot.name}`;
  }
  return precomputeUkiFile(built.path, 'sha256', {});
}

test('a real changed boot: verify --image and the key service refusal name the same components', async (t) => {
  const signed = await loadBootFixture('trixie-stub257');
  const booted = await loadBootFixture('sid-stub262');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-changed-boot-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [signedPrediction, bootedPrediction] = [await predictionOf(signed, dir), await predictionOf(booted, dir)];
  // A drifted input is no proof (issue 12): fail, naming what to rerun.
  if (typeof signedPrediction === 'string' || typeof bootedPrediction === 'string') {
    t.fail([signedPrediction, bootedPrediction].filter((p) => typeof p === 'string').join('; '));
    return;
  }
  const file = measurementFileFromPrediction(signedPrediction, { image: { name: 'node', version: '1' }, bank: 'sha256' });

  // measurements verify --image: the file against the booted image's recomputation.
  const report = compareWithPrediction(file, bootedPrediction);
  t.false(report.ok);
  const byVerify = report.rows
    .filter((r) => r.verdict === 'mismatch')
    .flatMap((r) => r.differences.map((d) => `PCR ${r.pcr} ${d.component} ${d.kind === 'changed' ? 'mismatch' : d.kind}`));

  // The key service: the quoted PCRs against the file, then the components from the firmware log.
  const set = referenceSetOf(file, 'node 1');
  const e = t.throws(() => checkMeasurements([set], booted.pcrs.sha256!), { instanceOf: PcrMismatchError }) as PcrMismatchError;
  t.deepEqual(e.mismatches.map((m) => m.pcr), [4, 11]);
  const byRefusal = nameChangedComponents(set, e.mismatches, booted.eventlog).map((c) => `PCR ${c.pcr} ${c.component} ${c.status}`);

  t.deepEqual(byRefusal, byVerify);
  // What changed, by name: the UKI (another stub) and the kernel LoadImage only stub 257 logs in PCR 4, the stub's .sbat in PCR 11.
  t.deepEqual(byRefusal, ['PCR 4 uki mismatch', 'PCR 4 .linux missing', 'PCR 11 .sbat mismatch']);
});
