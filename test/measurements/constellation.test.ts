import test from 'ava';
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SextantError } from '../../lib/errors.js';
import {
  assertConstellationV2,
  fromConstellation,
  selectEntry,
  serializeConstellation,
  toConstellation,
  type ConstellationMeasurementsV2,
} from '../../measurements/constellation/index.js';
import { MeasurementsInvalidError, parseMeasurementFile, type MeasurementFile } from '../../measurements/format/index.js';
import { sextant } from '../helpers/cli.js';
import { FIXTURES } from '../helpers/paths.js';
import { sampleMeasurementFile, sha256Hex, tempDir, writeJson } from './signing-helpers.js';

const FIXTURE = path.join(FIXTURES, 'measurements/constellation-v2.json');

async function fixture(): Promise<ConstellationMeasurementsV2> {
  const doc: unknown = JSON.parse(await readFile(FIXTURE, 'utf8'));
  assertConstellationV2(doc);
  return doc;
}

test('import picks QEMU/qemu-vtpm by default, keeps values and enforcement, lower-cases hex', async (t) => {
  const file = fromConstellation(await fixture());
  t.notThrows(() => parseMeasurementFile(Buffer.from(JSON.stringify(file))));
  t.is(file.bank, 'sha256');
  t.deepEqual(file.image, { name: 'constellation', version: 'v2.99.0' });
  t.deepEqual(Object.keys(file.pcrs), ['4', '8', '9', '11', '12', '13', '14', '15']);
  t.deepEqual(file.pcrs['4'], { expected: sha256Hex('qemu-4'), enforced: true });
  t.deepEqual(file.pcrs['14'], { expected: sha256Hex('qemu-14'), enforced: false });
  t.like(file.metadata, { source: 'constellation', csp: 'QEMU', attestationVariant: 'qemu-vtpm', constellationRef: '-', constellationStream: 'stable' });
});

test('--csp / --variant choose the entry; a missing or ambiguous choice is INVALID_ARGUMENT', async (t) => {
  const doc = await fixture();
  t.is(selectEntry(doc, { csp: 'aws' }).attestationVariant, 'aws-nitro-tpm');
  t.is(selectEntry(doc, { attestationVariant: 'gcp-sev-es' }).csp, 'GCP');
  t.throws(() => selectEntry(doc, { csp: 'Azure' }), { code: 'INVALID_ARGUMENT', message: /no entry Azure\/\* .*AWS\/aws-nitro-tpm, QEMU\/qemu-vtpm, GCP\/gcp-sev-es/ });
  const noQemu = { ...doc, list: doc.list.filter((e) => e.csp !== 'QEMU') };
  t.throws(() => selectEntry(noQemu), { code: 'INVALID_ARGUMENT', message: /--csp\/--variant/ });
  const twoAws = { ...doc, list: [...doc.list, { ...doc.list[0], attestationVariant: 'aws-sev-snp' }] };
  t.throws(() => selectEntry(twoAws, { csp: 'AWS' }), { code: 'INVALID_ARGUMENT', message: /2 entries match/ });
  t.is(selectEntry({ ...doc, list: [doc.list[2]] }).csp, 'GCP', 'a single entry needs no choice');
});

test('round trip: Constellation -> sextant -> Constellation gives the chosen entry back', async (t) => {
  const doc = await fixture();
  for (const entry of doc.list) {
    const back = toConstellation(fromConstellation(doc, { csp: entry.csp, attestationVariant: entry.attestationVariant }));
    t.deepEqual(back, { version: doc.version, ref: doc.ref, stream: doc.stream, list: [entry] });
  }
});

test('round trip: sextant -> Constellation -> sextant keeps every expected value and its enforcement', (t) => {
  const file = sampleMeasurementFile() as unknown as MeasurementFile;
  const doc = toConstellation(file, { csp: 'GCP', attestationVariant: 'gcp-sev-snp', ref: 'main', stream: 'nightly' });
  t.deepEqual(Object.keys(doc), ['version', 'ref', 'stream', 'list'], "Constellation's field order");
  t.like(doc, { version: '0.1.0', ref: 'main', stream: 'nightly', list: [{ csp: 'GCP', attestationVariant: 'gcp-sev-snp' }] });
  const parsed: unknown = JSON.parse(serializeConstellation(doc).toString());
  assertConstellationV2(parsed);
  const back = fromConstellation(parsed);
  for (const [pcr, m] of Object.entries(file.pcrs)) t.deepEqual(back.pcrs[pcr], { expected: m.expected, enforced: m.enforced });
  t.deepEqual(Object.keys(back.pcrs), Object.keys(file.pcrs));
});

test('a malformed document is MEASUREMENTS_INVALID naming every bad field', (t) => {
  const bad = {
    version: 2,
    ref: '-',
    list: [
      { csp: 'QEMU', attestationVariant: '', measurements: { '4': { expected: 'xyz', warnOnly: 'no' }, '99': { expected: '00'.repeat(32) } } },
      { csp: 'AWS', attestationVariant: 'aws-nitro-tpm', measurements: { '4': { expected: '00'.repeat(32) }, '9': { expected: '00'.repeat(48) } } },
      'nope',
    ],
  };
  const err = t.throws(() => assertConstellationV2(bad), { instanceOf: MeasurementsInvalidError });
  t.deepEqual(err?.issues.map((i) => i.path).sort(), [
    'list[0].attestationVariant',
    'list[0].measurements.4.expected',
    'list[0].measurements.4.warnOnly',
    'list[0].measurements.99',
    'list[1].measurements',
    'list[2]',
    'stream',
    'version',
  ]);
  // What Constellation itself accepts: a bare hex string, and warnOnly left out, both enforced.
  const legacy = { version: 'v1', ref: '-', stream: 'stable', list: [{ csp: 'QEMU', attestationVariant: 'qemu-vtpm', measurements: { '4': 'AB'.repeat(32), '9': { expected: 'cd'.repeat(32) } } }] };
  assertConstellationV2(legacy);
  t.deepEqual(fromConstellation(legacy).pcrs, { '4': { expected: 'ab'.repeat(32), enforced: true }, '9': { expected: 'cd'.repeat(32), enforced: true } });
});

test('property: assertConstellationV2 on arbitrary JSON throws nothing but MEASUREMENTS_INVALID', (t) => {
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      try {
        assertConstellationV2(v);
        return true;
      } catch (e) {
        return e instanceof SextantError && e.code === 'MEASUREMENTS_INVALID';
      }
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('CLI: import, show, export round trip through files; bad input exits 2 naming the field', async (t) => {
  const dir = await tempDir(t);
  const out = path.join(dir, 'aws.json');
  const imp = await sextant(['measurements', 'import', FIXTURE, '--format', 'constellation', '--csp', 'AWS', '--name', 'constellation-aws', '--out', out]);
  t.is(imp.exitCode, 0, imp.stderr);
  const file = parseMeasurementFile(await readFile(out));
  t.is(file.image.name, 'constellation-aws');
  t.is(file.pcrs['14'].enforced, false);

  const show = await sextant(['measurements', 'show', out]);
  t.is(show.exitCode, 0, show.stderr);
  t.regex(show.stdout, new RegExp(`^14 +${sha256Hex('aws-14')} +warn-only`, 'm'));

  const back = path.join(dir, 'back.json');
  const exp = await sextant(['measurements', 'export', out, '--format', 'constellation', '--out', back]);
  t.is(exp.exitCode, 0, exp.stderr);
  const doc = await fixture();
  t.deepEqual(JSON.parse(await readFile(back, 'utf8')), { version: doc.version, ref: '-', stream: 'stable', list: [doc.list[0]] });

  const malformed = await writeJson(dir, 'bad.json', { version: 'v1', ref: '-', stream: 'stable', list: [{ csp: 'QEMU', attestationVariant: 'qemu-vtpm', measurements: { '4': { expected: 'zz', warnOnly: false } } }] });
  const bad = await sextant(['measurements', 'import', malformed, '--format', 'constellation', '--out', path.join(dir, 'x.json')]);
  t.is(bad.exitCode, 2);
  t.regex(bad.stderr, /^sextant: MEASUREMENTS_INVALID: .*list\[0\]\.measurements\.4\.expected/);

  const wrongFormat = await sextant(['measurements', 'import', FIXTURE, '--format', 'yaml', '--out', path.join(dir, 'x.json')]);
  t.is(wrongFormat.exitCode, 2);
  t.regex(wrongFormat.stderr, /USAGE: --format must be one of constellation/);

  const help = await sextant(['measurements', 'import', '--help']);
  t.regex(help.stdout, /QEMU\/qemu-vtpm/);
});
