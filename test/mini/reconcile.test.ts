/**
 * The rollout planner (mini/reconcile/plan.ts) run on a simulated cluster: from any reachable
 * state (a steady cluster, a rollout interrupted by crashes or failed boots at any step, or an
 * arbitrary mix of nodes and measurement sets), planning and executing again reaches the
 * declared state; a joined node is only stopped when N joined nodes remain; a measurement set
 * is only retired when no node of its image remains; a crash costs no extra node.
 */
import test from 'ava';
import fc from 'fast-check';
import { planRollout, type DeclaredCluster, type ObservedCluster, type ObservedMeasurementSet, type ObservedNode, type ObservedNodeState, type PlanStep } from '../../mini/reconcile/plan.js';

class BootFailed extends Error {}

/** A cluster the steps act on, checking the invariants at every step. */
class SimCluster {
  nodes = new Map<string, { imageVersion: string; state: ObservedNodeState }>();
  sets = new Map<string, ObservedMeasurementSet['state']>();
  violations: string[] = [];
  added = 0;

  constructor(
    readonly declared: DeclaredCluster,
    o: ObservedCluster,
  ) {
    for (const x of o.nodes) this.nodes.set(x.name, { imageVersion: x.imageVersion, state: x.state });
    for (const s of o.measurements) this.sets.set(s.imageVersion, s.state);
  }

  observe(): ObservedCluster {
    return {
      nodes: [...this.nodes].map(([name, x]) => ({ name, ...x })),
      measurements: [...this.sets].map(([imageVersion, state]) => ({ imageVersion, state })),
    };
  }

  joined(): number {
    return [...this.nodes.values()].filter((x) => x.state === 'joined').length;
  }

  /** One step; `fail` makes a wait-joined boot fail (a refused attestation, a frozen guest). */
  run(s: PlanStep, fail = false): void {
    switch (s.kind) {
      case 'load-measurements':
        for (const [v, st] of this.sets) if (st === 'current') this.sets.set(v, 'overlap');
        this.sets.set(s.imageVersion, 'current');
        return;
      case 'add-node':
        if (this.nodes.has(s.name)) this.violations.push(`add-node ${s.name}: the name is taken`);
        this.nodes.set(s.name, { imageVersion: s.imageVersion, state: 'booting' });
        this.added++;
        return;
      case 'wait-joined': {
        const x = this.nodes.get(s.name);
        if (!x) throw new Error(`wait-joined ${s.name}: no such node`);
        const st = this.sets.get(x.imageVersion);
        if (fail || st === undefined || st === 'retired' || x.state === 'failed' || x.state === 'stopped') {
          x.state = 'failed';
          throw new BootFailed(s.name);
        }
        x.state = 'joined';
        return;
      }
      case 'stop-node': {
        const x = this.nodes.get(s.name);
        if (!x) throw new Error(`stop-node ${s.name}: no such node`);
        this.nodes.delete(s.name);
        if (x.state === 'joined' && this.joined() < this.declared.nodes) this.violations.push(`stop-node ${s.name} left ${this.joined()} joined of ${this.declared.nodes}`);
        return;
      }
      case 'retire-measurements':
        if ([...this.nodes.values()].some((x) => x.imageVersion === s.imageVersion)) this.violations.push(`retired ${s.imageVersion} while a node of it remains`);
        this.sets.set(s.imageVersion, 'retired');
        return;
    }
  }

  /** A crash inside a step: what it had done so far stays. */
  halfRun(s: PlanStep): void {
    if (s.kind === 'add-node') this.nodes.set(s.name, { imageVersion: s.imageVersion, state: 'stopped' }); // recorded, never booted
    if (s.kind === 'stop-node' && this.nodes.has(s.name)) {
      const x = this.nodes.get(s.name)!;
      if (x.state === 'joined' && this.joined() - 1 < this.declared.nodes) this.violations.push(`stop-node ${s.name} (crashed) left too few joined`);
      x.state = 'stopped'; // qemu killed, record not removed yet
    }
  }

  reached(): boolean {
    const d = this.declared;
    const nodes = [...this.nodes.values()];
    const active = [...this.sets].filter(([, st]) => st !== 'retired').map(([v]) => v);
    return nodes.length === d.nodes && nodes.every((x) => x.state === 'joined' && x.imageVersion === d.imageVersion) && active.length === 1 && active[0] === d.imageVersion;
  }
}

const VERSIONS = ['1.0.0', '1.1.0', '1.2.0', '2.0.0'];
const version = fc.constantFrom(...VERSIONS);
const declared = fc.record({ imageVersion: version, nodes: fc.integer({ min: 1, max: 5 }) });

/** A steady cluster: M joined nodes of one image, its measurements current. */
const steady = fc.record({ v: version, m: fc.integer({ min: 1, max: 5 }) }).map(({ v, m }): ObservedCluster => ({
  nodes: Array.from({ length: m }, (_, i) => ({ name: `node-${i + 1}`, imageVersion: v, state: 'joined' as const })),
  measurements: [{ imageVersion: v, state: 'current' }],
}));

/** Anything: nodes of any image in any state, sets in any state. */
const arbitrary = fc.record({
  nodes: fc.uniqueArray(
    fc.record({ name: fc.integer({ min: 1, max: 12 }).map((i) => `node-${i}`), imageVersion: version, state: fc.constantFrom<ObservedNodeState>('booting', 'joined', 'failed', 'stopped') }),
    { selector: (x) => x.name, maxLength: 7 },
  ),
  measurements: fc.uniqueArray(fc.record({ imageVersion: version, state: fc.constantFrom<ObservedMeasurementSet['state']>('current', 'overlap', 'retired') }), { selector: (s) => s.imageVersion, maxLength: 4 }),
});

/** An interruption: after `at` steps of a plan, a crash (between steps or inside one) or a failed boot. */
const interruption = fc.record({ at: fc.nat({ max: 30 }), kind: fc.constantFrom('crash', 'crash-inside', 'boot-fails') });

/**
 * Plans and runs until the cluster is as declared: each interruption stops a run (the next
 * plan starts from what it left); after the last one, one plan must finish the job.
 */
function converge(d: DeclaredCluster, start: ObservedCluster, interruptions: { at: number; kind: string }[]): SimCluster {
  const sim = new SimCluster(d, start);
  for (const intr of interruptions) {
    const plan = planRollout(d, sim.observe());
    let i = 0;
    try {
      for (; i < plan.length; i++) {
        if (i === intr.at && intr.kind === 'crash') break;
        if (i === intr.at && intr.kind === 'crash-inside') {
          sim.halfRun(plan[i]);
          break;
        }
        sim.run(plan[i], i === intr.at && intr.kind === 'boot-fails' && plan[i].kind === 'wait-joined');
      }
    } catch (e) {
      if (!(e instanceof BootFailed)) throw e;
    }
  }
  const final = planRollout(d, sim.observe());
  for (const s of final) sim.run(s);
  return sim;
}

test('executing the plan reaches the declared state from any reachable state; joined nodes never drop below N; sets retire only when no node of theirs remains', (t) => {
  fc.assert(
    fc.property(declared, fc.oneof(steady, arbitrary), fc.array(interruption, { maxLength: 4 }), (d, start, intrs) => {
      const sim = converge(d, start, intrs);
      t.deepEqual(sim.violations, []);
      t.true(sim.reached(), JSON.stringify(sim.observe()));
      t.deepEqual(planRollout(d, sim.observe()), [], 'nothing left to do once declared and observed agree');
      return sim.violations.length === 0 && sim.reached();
    }),
    { numRuns: 3000 },
  );
});

test('re-planning after a crash between steps continues: no more nodes added than the rest of the first plan would have', (t) => {
  fc.assert(
    fc.property(declared, steady, fc.nat({ max: 30 }), (d, start, at) => {
      const first = planRollout(d, start);
      const sim = new SimCluster(d, start);
      const done = Math.min(at, first.length);
      for (const s of first.slice(0, done)) sim.run(s);
      const rest = first.slice(done);
      const again = planRollout(d, sim.observe());
      const adds = (p: PlanStep[]) => p.filter((s) => s.kind === 'add-node').length;
      t.true(adds(again) <= adds(rest), `${JSON.stringify(rest)} vs ${JSON.stringify(again)}`);
      t.is(again.filter((s) => s.kind === 'load-measurements').length, rest.some((s) => s.kind === 'load-measurements') ? 1 : 0);
      for (const s of again) sim.run(s);
      return sim.reached() && adds(again) <= adds(rest);
    }),
    { numRuns: 2000 },
  );
});

test('the plan for two old nodes and a new image: load, then replace one at a time (the new joins before the old stops), then retire', (t) => {
  const start: ObservedCluster = {
    nodes: [
      { name: 'node-1', imageVersion: '1.0.0', state: 'joined' },
      { name: 'node-2', imageVersion: '1.0.0', state: 'joined' },
    ],
    measurements: [{ imageVersion: '1.0.0', state: 'current' }],
  };
  const plan = planRollout({ imageVersion: '1.1.0', nodes: 2 }, start);
  t.deepEqual(plan, [
    { kind: 'load-measurements', imageVersion: '1.1.0' },
    { kind: 'add-node', name: 'node-3', imageVersion: '1.1.0' },
    { kind: 'wait-joined', name: 'node-3', imageVersion: '1.1.0' },
    { kind: 'stop-node', name: 'node-1', imageVersion: '1.0.0', reason: 'replaced' },
    { kind: 'add-node', name: 'node-4', imageVersion: '1.1.0' },
    { kind: 'wait-joined', name: 'node-4', imageVersion: '1.1.0' },
    { kind: 'stop-node', name: 'node-2', imageVersion: '1.0.0', reason: 'replaced' },
    { kind: 'retire-measurements', imageVersion: '1.0.0' },
  ]);
  // Crashed after node-3 was started: the next plan waits for it and goes on with node-1.
  const crashed: ObservedCluster = {
    nodes: [...start.nodes, { name: 'node-3', imageVersion: '1.1.0', state: 'booting' }],
    measurements: [{ imageVersion: '1.0.0', state: 'overlap' }, { imageVersion: '1.1.0', state: 'current' }],
  };
  t.deepEqual(planRollout({ imageVersion: '1.1.0', nodes: 2 }, crashed), plan.slice(2));
  // The same config again once done: nothing to do.
  const done: ObservedCluster = {
    nodes: [{ name: 'node-3', imageVersion: '1.1.0', state: 'joined' }, { name: 'node-4', imageVersion: '1.1.0', state: 'joined' }],
    measurements: [{ imageVersion: '1.0.0', state: 'retired' }, { imageVersion: '1.1.0', state: 'current' }],
  };
  t.deepEqual(planRollout({ imageVersion: '1.1.0', nodes: 2 }, done), []);
});

test('a failed node is removed before anything else; scaling down keeps the joined nodes', (t) => {
  const o: ObservedCluster = {
    nodes: [
      { name: 'node-1', imageVersion: '1.1.0', state: 'failed' },
      { name: 'node-2', imageVersion: '1.1.0', state: 'booting' },
      { name: 'node-3', imageVersion: '1.1.0', state: 'joined' },
    ],
    measurements: [{ imageVersion: '1.1.0', state: 'current' }],
  };
  t.deepEqual(planRollout({ imageVersion: '1.1.0', nodes: 1 }, o), [
    { kind: 'stop-node', name: 'node-1', imageVersion: '1.1.0', reason: 'failed' },
    { kind: 'stop-node', name: 'node-2', imageVersion: '1.1.0', reason: 'surplus' },
  ]);
  t.deepEqual(planRollout({ imageVersion: '1.1.0', nodes: 3 }, o).map((s) => s.kind), ['stop-node', 'wait-joined', 'add-node', 'wait-joined']);
});
