import test from 'ava';
import fc from 'fast-check';
import { SextantError } from '../../lib/errors.js';
import {
  assertMeasurementFile,
  canonicalJson,
  measurementFileFromPrediction,
  MeasurementsInvalidError,
  parseMeasurementFile,
  serializeMeasurementFile,
  type MeasurementFile,
  type PcrPrediction,
} from '../../measurements/format/index.js';
import { replaySha256, sampleMeasurementFile, sha256Hex } from './signing-helpers.js';

function issuesOf(x: unknown): string[] {
  try {
    assertMeasurementFile(x);
  } catch (e) {
    if (e instanceof MeasurementsInvalidError) return e.issues.map((i) => i.path);
    throw e;
  }
  return [];
}

test('a realistic file is valid, and its PCR 11 equals the replay of its manifest', (t) => {
  const file = sampleMeasurementFile();
  t.notThrows(() => assertMeasurementFile(file));
  t.deepEqual(issuesOf(file), []);
});

test('every invalid field is listed in one MEASUREMENTS_INVALID error', (t) => {
  const file = sampleMeasurementFile() as any;
  file.version = 2;
  file.image.name = '';
  file.image.ukiSha256 = 'ABCD';
  file.pcrs['11'].enforced = 'yes';
  file.pcrs['11'].events[2].digest = 'zz';
  file.pcrs['11'].events[3].component = 7;
  file.pcrs['12'].expected = 'ff'.repeat(48);
  file.pcrs['04'] = { expected: '00'.repeat(32), enforced: true };
  file.pcrs['4'].enforce = true;
  file.metadata.created = 'yesterday';
  file.extra = 1;
  const err = t.throws(() => assertMeasurementFile(file), { instanceOf: MeasurementsInvalidError });
  t.is(err?.code, 'MEASUREMENTS_INVALID');
  t.deepEqual(err?.issues.map((i) => i.path).sort(), [
    'extra',
    'version',
    'image.name',
    'image.ukiSha256',
    'pcrs.11.enforced',
    'pcrs.11.events[2].digest',
    'pcrs.11.events[3].component',
    'pcrs.12.expected',
    'pcrs.04',
    'pcrs.4.enforce',
    'metadata.created',
  ].sort());
  t.regex(err!.message, /pcrs\.11\.events\[2\]\.digest/);
});

test('a manifest that does not replay to the expected value is rejected at that PCR', (t) => {
  const file = sampleMeasurementFile() as any;
  // A changed .cmdline digest: the expected value no longer follows from the events.
  file.pcrs['11'].events[5].digest = sha256Hex('console=ttyS0 init=/bin/sh');
  t.deepEqual(issuesOf(file), ['pcrs.11.expected']);
  // EV_NO_ACTION events are informational and not extended.
  const ok = sampleMeasurementFile() as any;
  ok.pcrs['11'].events.push({ type: 'EV_NO_ACTION', digest: '11'.repeat(32), description: 'note' });
  t.deepEqual(issuesOf(ok), []);
  // ...but any other appended event is.
  const digests = ok.pcrs['11'].events.filter((e: any) => e.type !== 'EV_NO_ACTION').map((e: any) => e.digest);
  ok.pcrs['11'].events.push({ type: 'EV_IPL', digest: '22'.repeat(32), description: 'extra' });
  t.deepEqual(issuesOf(ok), ['pcrs.11.expected']);
  ok.pcrs['11'].expected = replaySha256([...digests, '22'.repeat(32)]);
  t.deepEqual(issuesOf(ok), []);
});

test('sha384 files take 48-byte values', (t) => {
  const file = { version: 1, image: { name: 'n', version: 'v' }, bank: 'sha384', pcrs: { '12': { expected: '00'.repeat(48), enforced: true, events: [] } } };
  t.deepEqual(issuesOf(file), []);
  t.deepEqual(issuesOf({ ...file, bank: 'sha1' }), ['bank']);
  t.deepEqual(issuesOf({ ...file, pcrs: {} }), ['pcrs']);
});

test('canonical output: same bytes whatever the key order, PCRs ascending, newline at the end', (t) => {
  const file = sampleMeasurementFile() as unknown as MeasurementFile;
  const shuffled: MeasurementFile = {
    metadata: { builder: 'test', created: '2026-11-26T20:00:00Z' },
    pcrs: { '4': file.pcrs['4'], '12': file.pcrs['12'], '11': file.pcrs['11'] },
    bank: file.bank,
    image: { stubVersion: '257', ukiSha256: file.image.ukiSha256, version: '0.1.0', name: 'sextant-node' },
    version: 1,
  };
  const bytes = serializeMeasurementFile(file);
  t.deepEqual(serializeMeasurementFile(shuffled), bytes);
  const text = bytes.toString('utf8');
  t.true(text.endsWith('}\n'));
  t.true(text.indexOf('"4"') < text.indexOf('"11"') && text.indexOf('"11"') < text.indexOf('"12"'));
  t.true(text.indexOf('"bank"') < text.indexOf('"image"') && text.indexOf('"image"') < text.indexOf('"metadata"'));
  t.deepEqual(parseMeasurementFile(bytes), file);
  t.is(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }], '10': 0, '9': 0 }), '{\n  "9": 0,\n  "10": 0,\n  "a": [\n    {\n      "c": 2,\n      "d": 1\n    }\n  ],\n  "b": 1\n}\n');
});

test('serializing refuses an invalid file', (t) => {
  const file = sampleMeasurementFile() as any;
  file.bank = 'md5';
  t.throws(() => serializeMeasurementFile(file), { code: 'MEASUREMENTS_INVALID' });
});

test('bytes that are not UTF-8 JSON are MEASUREMENTS_INVALID', (t) => {
  t.throws(() => parseMeasurementFile(Buffer.from([0xff, 0xfe, 0x7b])), { code: 'MEASUREMENTS_INVALID' });
  t.throws(() => parseMeasurementFile(Buffer.from('{"version":1,')), { code: 'MEASUREMENTS_INVALID' });
  t.throws(() => parseMeasurementFile(Buffer.from('[]')), { code: 'MEASUREMENTS_INVALID' });
});

function onlySextantErrors(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch (e) {
    return e instanceof SextantError && e.code === 'MEASUREMENTS_INVALID';
  }
}

test('property: assertMeasurementFile on arbitrary values throws nothing but MEASUREMENTS_INVALID', (t) => {
  fc.assert(fc.property(fc.jsonValue(), (v) => onlySextantErrors(() => assertMeasurementFile(v))), { numRuns: 500 });
  fc.assert(fc.property(fc.anything({ withNullPrototype: true, withObjectString: true }), (v) => onlySextantErrors(() => assertMeasurementFile(v))), { numRuns: 300 });
  t.pass();
});

/** Replaces the value at one random path of a valid file with arbitrary JSON. */
function mutate(file: any, pick: number, replacement: unknown): any {
  const copy = JSON.parse(JSON.stringify(file));
  const holders: [any, string][] = [];
  const walk = (o: any): void => {
    if (o === null || typeof o !== 'object') return;
    for (const k of Object.keys(o)) {
      holders.push([o, k]);
      walk(o[k]);
    }
  };
  walk(copy);
  const [holder, key] = holders[pick % holders.length];
  holder[key] = replacement;
  return copy;
}

test('property: a valid file with one field replaced is either valid or MEASUREMENTS_INVALID naming a path', (t) => {
  const base = sampleMeasurementFile();
  fc.assert(
    fc.property(fc.nat(), fc.jsonValue({ maxDepth: 2 }), (pick, value) => {
      const m = mutate(base, pick, value);
      try {
        assertMeasurementFile(m);
        return true;
      } catch (e) {
        return e instanceof MeasurementsInvalidError && e.issues.length > 0 && e.issues.every((i) => i.path.length > 0);
      }
    }),
    { numRuns: 400 },
  );
  t.pass();
});

test('property: parse never throws anything but MEASUREMENTS_INVALID on arbitrary or mutated bytes', (t) => {
  const good = Buffer.from(canonicalJson(sampleMeasurementFile()));
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => onlySextantErrors(() => parseMeasurementFile(b))), { numRuns: 300 });
  fc.assert(
    fc.property(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 }), (at, byte) => {
      const b = Buffer.from(good);
      b[at] = byte;
      return onlySextantErrors(() => parseMeasurementFile(b));
    }),
    { numRuns: 300 },
  );
  t.pass();
});

const hex32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));

test('property: serialize . parse is the identity on generated valid files', (t) => {
  const event = fc.record(
    { type: fc.constantFrom('EV_IPL', 'EV_EFI_ACTION', 'EV_SEPARATOR', 'EV_EVENT_TAG'), digest: hex32, description: fc.string(), component: fc.string({ minLength: 1 }) },
    { requiredKeys: ['type', 'digest', 'description'] },
  );
  const pcr = fc.oneof(
    fc.record({ expected: hex32, enforced: fc.boolean() }),
    fc.tuple(fc.array(event, { maxLength: 6 }), fc.boolean()).map(([events, enforced]) => ({
      expected: replaySha256(events.map((e) => e.digest)),
      enforced,
      events,
    })),
  );
  const file = fc.record({
    version: fc.constant(1 as const),
    image: fc.record({ name: fc.string({ minLength: 1 }), version: fc.string({ minLength: 1 }) }),
    bank: fc.constant('sha256' as const),
    pcrs: fc.dictionary(fc.integer({ min: 0, max: 23 }).map(String), pcr, { minKeys: 1, maxKeys: 8 }),
  });
  fc.assert(
    fc.property(file, (f) => {
      const bytes = serializeMeasurementFile(f as MeasurementFile);
      return serializeMeasurementFile(parseMeasurementFile(bytes)).equals(bytes);
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('boot assumptions: phases are strings, secureBoot a boolean', (t) => {
  const file = sampleMeasurementFile() as any;
  file.boot = { pcrPhases: ['enter-initrd', 'leave-initrd'], secureBoot: false };
  t.deepEqual(issuesOf(file), []);
  file.boot = { pcrPhases: ['enter-initrd', ''], secureBoot: 'no', phases: [] };
  t.deepEqual(issuesOf(file).sort(), ['boot.pcrPhases[1]', 'boot.phases', 'boot.secureBoot']);
});

/** A prediction shaped like measurements/uki's precompute output (no `component` fields). */
function ukiLikePrediction(): PcrPrediction {
  const e = (pcr: number, type: string, data: string, description: string) => ({ pcr, type, digest: sha256Hex(data), description });
  const events = [
    e(4, 'EV_EFI_ACTION', 'Calling EFI Application from Boot Option', 'Calling EFI Application from Boot Option'),
    e(4, 'EV_SEPARATOR', '\0\0\0\0', 'separator'),
    e(4, 'EV_EFI_BOOT_SERVICES_APPLICATION', 'uki', 'UKI (Authenticode)'),
    e(4, 'EV_EFI_BOOT_SERVICES_APPLICATION', 'kernel', '.linux kernel loaded by the stub via LoadImage (Authenticode)'),
    e(9, 'EV_EVENT_TAG', 'cmdline', 'LOADED_IMAGE::LoadOptions'),
    e(9, 'EV_EVENT_TAG', 'initrd', 'Linux initrd'),
    e(11, 'EV_IPL', '.linux\0', '.linux'),
    e(11, 'EV_IPL', 'kernel', '.linux content (6 bytes)'),
    e(11, 'SYSTEMD_PCRPHASE', 'enter-initrd', 'systemd-pcrphase enter-initrd'),
  ];
  const pcrs: Record<string, string> = {};
  for (const pcr of [4, 9, 11, 12, 13]) pcrs[pcr] = replaySha256(events.filter((x) => x.pcr === pcr).map((x) => x.digest));
  return { pcrs, events, stub: { version: '257.9-1' } };
}

test('measurementFileFromPrediction: every predicted PCR with its manifest, components named', (t) => {
  const prediction = ukiLikePrediction();
  const file = measurementFileFromPrediction(prediction, {
    image: { name: 'n', version: '1', stubVersion: '257.9-1' },
    bank: 'sha256',
    boot: { pcrPhases: ['enter-initrd'] },
    warnOnly: [9],
  });
  t.deepEqual(Object.keys(file.pcrs), ['4', '9', '11', '12', '13']);
  t.deepEqual(Object.fromEntries(Object.entries(file.pcrs).map(([k, p]) => [k, p.enforced])), { '4': true, '9': false, '11': true, '12': true, '13': true });
  t.deepEqual(file.pcrs['12'], { expected: '00'.repeat(32), enforced: true, events: [] });
  t.deepEqual(Object.values(file.pcrs).flatMap((p) => (p.events ?? []).map((e) => e.component)), [
    'firmware', 'firmware', 'uki', '.linux', '.cmdline', 'initrd', '.linux', '.linux', 'systemd-pcrphase',
  ]);
  t.deepEqual(parseMeasurementFile(serializeMeasurementFile(file)), file);
  // A prediction whose values do not follow from its events is refused, not written.
  prediction.pcrs['11'] = '11'.repeat(32);
  t.throws(() => measurementFileFromPrediction(prediction, { image: { name: 'n', version: '1' }, bank: 'sha256' }), { code: 'MEASUREMENTS_INVALID' });
});
