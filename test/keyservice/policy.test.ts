import test from 'ava';
import fc from 'fast-check';
import { checkMeasurements } from '../../attestation/policy/check-measurements.js';
import { checkClusterLock } from '../../keyservice/policy/cluster-lock.js';
import { clusterLockPcr } from '../../keyservice/derive.js';
import { toHex } from '../../lib/bytes.js';
import type { ReferenceSet } from '../../attestation/policy/reference.js';
import { PcrMismatchError } from '../../attestation/policy/pcr-mismatch.js';

const v = (b: number) => b.toString(16).padStart(2, '0').repeat(32);
const observed = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [String(i), v(i)]));
const setOf = (label: string, over: Record<string, { expected: string; enforced: boolean }>): ReferenceSet => ({
  label,
  pcrs: { '4': { expected: v(4), enforced: true }, '9': { expected: v(9), enforced: true }, '11': { expected: v(11), enforced: true }, ...over },
});

test('matching enforced PCRs pass; warn-only mismatches become warnings', (t) => {
  const r = checkMeasurements([setOf('new', { '1': { expected: v(99), enforced: false } })], observed);
  t.is(r.matched.label, 'new');
  t.is(r.warnings.length, 1);
  t.regex(r.warnings[0], /PCR 1 /);
});

test('every enforced mismatch is reported in one MEASUREMENTS_MISMATCH', (t) => {
  const e = t.throws(() => checkMeasurements([setOf('new', { '9': { expected: v(1), enforced: true }, '11': { expected: v(2), enforced: true } })], observed));
  t.true(e instanceof PcrMismatchError);
  t.is((e as PcrMismatchError).code, 'MEASUREMENTS_MISMATCH');
  t.deepEqual((e as PcrMismatchError).mismatches.map((m) => m.pcr), [9, 11]);
});

test('during a rollout either of two sets is accepted', (t) => {
  const newer = setOf('v2', { '11': { expected: v(77), enforced: true } });
  const older = setOf('v1', {});
  t.is(checkMeasurements([newer, older], observed).matched.label, 'v1');
  t.throws(() => checkMeasurements([newer], observed), { code: 'MEASUREMENTS_MISMATCH' } as never);
});

test('PCR 15 in a measurements file is ignored (the cluster lock decides it)', (t) => {
  t.notThrows(() => checkMeasurements([setOf('x', { '15': { expected: v(3), enforced: true } })], observed));
});

test('join needs PCR 15 zero; rejoin accepts zero (rebooted) or this cluster\'s lock (agent restarted), nothing else', (t) => {
  const id = Buffer.alloc(32, 5);
  const ours = toHex(clusterLockPcr(id));
  const theirs = toHex(clusterLockPcr(Buffer.alloc(32, 6)));
  const zero = '00'.repeat(32);
  t.is(checkClusterLock('join', zero, id), 'unlocked');
  t.throws(() => checkClusterLock('join', ours, id), { code: 'CLUSTER_LOCK_SET' } as never);
  t.throws(() => checkClusterLock('join', theirs, id), { code: 'CLUSTER_LOCK_SET' } as never);
  t.is(checkClusterLock('rejoin', ours, id), 'locked-to-this-cluster');
  t.is(checkClusterLock('rejoin', zero, id), 'unlocked');
  t.throws(() => checkClusterLock('rejoin', theirs, id), { code: 'CLUSTER_LOCK_MISMATCH' } as never);
  t.throws(() => checkClusterLock('rejoin', 'ff'.repeat(32), id), { code: 'CLUSTER_LOCK_MISMATCH' } as never);
});

test('rejoin policy over arbitrary PCR 15 values: accepted exactly at zero and at the lock', (t) => {
  const id = Buffer.alloc(32, 5);
  const ours = toHex(clusterLockPcr(id));
  const value = fc.oneof(fc.constant(ours), fc.constant('00'.repeat(32)), fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toHex));
  t.notThrows(() => fc.assert(
    fc.property(value, (v) => {
      let ok = true;
      try {
        checkClusterLock('rejoin', v, id);
      } catch {
        ok = false;
      }
      return ok === (v === ours || v === '00'.repeat(32));
    }),
  ));
});
