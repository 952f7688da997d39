/** The declared mini cluster (mini/reconcile/config.ts): YAML or JSON, closed, bounded, refusals with a stable reason. */
import test from 'ava';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { isSextantError } from '../../lib/errors.js';
import { MINI_CONFIG_LIMITS, MiniConfigError, parseMiniConfig, type MiniConfigReason } from '../../mini/reconcile/config.js';

const good = { imageVersion: '1.1.0', image: 'out-1.1.0', kubernetesVersion: 'v1.33.4', nodes: 2 };

test('YAML and JSON give the same config; the image path is resolved against the file', (t) => {
  const yaml = 'imageVersion: 1.1.0\nimage: out-1.1.0\nkubernetesVersion: v1.33.4\nnodes: 2\n';
  const a = parseMiniConfig(yaml, '/etc/sextant/mini.yaml');
  t.deepEqual(a, { ...good, image: '/etc/sextant/out-1.1.0' });
  t.deepEqual(parseMiniConfig(JSON.stringify(good), '/etc/sextant/mini.json'), a);
  t.is(parseMiniConfig(JSON.stringify({ ...good, image: '/abs/img' }), '/x/mini.json').image, '/abs/img');
});

const reasonOf = (text: string, file = 'mini.yaml'): { reason: MiniConfigReason; field?: string } => {
  try {
    parseMiniConfig(text, file);
  } catch (e) {
    if (e instanceof MiniConfigError) return { reason: e.reason, field: e.field };
    throw e;
  }
  throw new Error('accepted');
};

test('each refusal has its reason and field', (t) => {
  const j = (o: unknown) => reasonOf(JSON.stringify(o), 'mini.json');
  t.deepEqual(j({ ...good, replicas: 3 }), { reason: 'unknown-field', field: 'replicas' });
  t.deepEqual(j({ ...good, nodes: undefined }), { reason: 'missing-field', field: 'nodes' });
  t.deepEqual(j({ ...good, nodes: '2' }), { reason: 'wrong-type', field: 'nodes' });
  t.deepEqual(j({ ...good, nodes: 2.5 }), { reason: 'wrong-type', field: 'nodes' });
  t.deepEqual(j({ ...good, nodes: 0 }), { reason: 'out-of-range', field: 'nodes' });
  t.deepEqual(j({ ...good, nodes: MINI_CONFIG_LIMITS.nodes + 1 }), { reason: 'out-of-range', field: 'nodes' });
  t.deepEqual(j({ ...good, imageVersion: 'latest' }), { reason: 'bad-format', field: 'imageVersion' });
  t.deepEqual(j({ ...good, imageVersion: 1.1 }), { reason: 'wrong-type', field: 'imageVersion' });
  t.deepEqual(j({ ...good, kubernetesVersion: '1.33' }), { reason: 'bad-format', field: 'kubernetesVersion' });
  t.deepEqual(j({ ...good, image: '' }), { reason: 'out-of-range', field: 'image' });
  t.deepEqual(j([good]), { reason: 'not-an-object', field: undefined });
  t.is(reasonOf('{"imageVersion": ', 'mini.json').reason, 'syntax');
  // YAML: duplicate keys, aliases and more than one document are refused; 1.1.0 stays a string, nodes an integer.
  t.is(reasonOf('nodes: 1\nnodes: 2\n').reason, 'syntax');
  t.is(reasonOf('a: &x [1]\nb: *x\n').reason, 'syntax');
  t.is(reasonOf('nodes: 1\n---\nnodes: 2\n').reason, 'syntax');
  t.deepEqual(reasonOf('imageVersion: 1.1\nimage: x\nkubernetesVersion: v1.2.3\nnodes: 1\n'), { reason: 'wrong-type', field: 'imageVersion' });
  t.is(reasonOf('x'.repeat(MINI_CONFIG_LIMITS.bytes + 1)).reason, 'too-large');
});

test('fuzz: any text, and any mutation of a valid config, is a config or MINI_CONFIG_INVALID', (t) => {
  const field = fc.constantFrom('imageVersion', 'image', 'kubernetesVersion', 'nodes', 'extra', '__proto__');
  const value = fc.oneof(fc.string({ maxLength: 50 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }));
  const mutated = fc.record({ drop: fc.option(field), set: fc.option(fc.tuple(field, value)) }).map(({ drop, set }) => {
    const o: Record<string, unknown> = { ...good };
    if (drop) delete o[drop];
    if (set) o[set[0]] = set[1];
    return o;
  });
  const text = fc.oneof(
    fc.string({ maxLength: 300 }),
    mutated.map((o) => JSON.stringify(o)),
    mutated.map((o) => stringify(o)),
  );
  let accepted = 0;
  fc.assert(
    fc.property(text, fc.constantFrom('mini.yaml', 'mini.json'), (s, file) => {
      try {
        const c = parseMiniConfig(s, file);
        accepted++;
        return typeof c.nodes === 'number' && c.nodes >= 1 && c.nodes <= 16 && typeof c.imageVersion === 'string';
      } catch (e) {
        return isSextantError(e, 'MINI_CONFIG_INVALID') && e instanceof MiniConfigError;
      }
    }),
    { numRuns: 4000 },
  );
  t.true(accepted > 0, 'some mutations stay valid');
});
