/**
 * Declarative rolling image upgrades as a pure function: from the declared cluster and what
 * is observed (nodes with their image version and whether they joined; the key service's
 * measurement sets), the ordered steps that reach the declaration. No processes, no I/O: the
 * mini executor (mini/apply.ts) runs the steps on QEMU; a Kubernetes operator could run the
 * same plan against a cloud.
 *
 * The plan for N old nodes and a new version:
 *   load-measurements(new)
 *   for each old node: add-node(new) -> wait-joined -> stop-node(old)
 *   retire-measurements(old)
 *
 * Planning again from any state the steps leave (a crash in the middle) continues the rollout:
 * a booting new node is waited for and counts as a replacement, a failed or half-stopped node
 * is removed, measurements already loaded are not loaded again. Two invariants hold for every
 * plan (test/mini/reconcile.test.ts checks them on a simulated cluster from random states):
 *   - a joined node is stopped only when at least N joined nodes remain after it;
 *   - a measurement set is retired only when no node of its image version remains.
 */

export interface DeclaredCluster {
  imageVersion: string;
  /** How many nodes should run the declared image. */
  nodes: number;
}

/** booting: started, not joined yet; joined: attested and joined; failed / stopped: not running (or given up). */
export type ObservedNodeState = 'booting' | 'joined' | 'failed' | 'stopped';

export interface ObservedNode {
  name: string;
  imageVersion: string;
  state: ObservedNodeState;
}

export interface ObservedMeasurementSet {
  imageVersion: string;
  state: 'current' | 'overlap' | 'retired';
}

export interface ObservedCluster {
  nodes: readonly ObservedNode[];
  measurements: readonly ObservedMeasurementSet[];
}

export type PlanStep =
  | { kind: 'load-measurements'; imageVersion: string }
  | { kind: 'add-node'; name: string; imageVersion: string }
  | { kind: 'wait-joined'; name: string; imageVersion: string }
  /** `reason`: replaced (an old image), surplus (more nodes than declared), failed (a node that failed or is not running). */
  | { kind: 'stop-node'; name: string; imageVersion: string; reason: 'replaced' | 'surplus' | 'failed' }
  | { kind: 'retire-measurements'; imageVersion: string };

export type PlanStepKind = PlanStep['kind'];

const byName = (a: ObservedNode, b: ObservedNode): number => {
  // node-2 before node-10: digits compared as numbers.
  return a.name.localeCompare(b.name, 'en', { numeric: true });
};

/** The next free `node-K` names, never one in `taken`. */
function* freshNames(taken: Set<string>): Generator<string> {
  for (let i = 1; ; i++) {
    const n = `node-${i}`;
    if (!taken.has(n)) {
      taken.add(n);
      yield n;
    }
  }
}

export const isActiveSet = (s: ObservedMeasurementSet): boolean => s.state !== 'retired';

/**
 * The steps from `observed` to `declared` ([] when they agree). Deterministic: the same inputs
 * give the same plan. New nodes are named node-K with the smallest K not in use.
 */
export function planRollout(declared: DeclaredCluster, observed: ObservedCluster): PlanStep[] {
  const v = declared.imageVersion;
  const n = declared.nodes;
  const steps: PlanStep[] = [];
  const names = freshNames(new Set(observed.nodes.map((x) => x.name)));

  if (!observed.measurements.some((s) => s.imageVersion === v && isActiveSet(s))) steps.push({ kind: 'load-measurements', imageVersion: v });

  const nodes = [...observed.nodes].sort(byName);
  // Not running, or given up: removed first (they count for nothing, so the joined count stays).
  for (const x of nodes) if (x.state === 'failed' || x.state === 'stopped') steps.push({ kind: 'stop-node', name: x.name, imageVersion: x.imageVersion, reason: 'failed' });
  const live = nodes.filter((x) => x.state === 'booting' || x.state === 'joined');
  const fresh = live.filter((x) => x.imageVersion === v);
  const old = live.filter((x) => x.imageVersion !== v);

  // Of the nodes on the declared image, N are kept (joined ones first); a booting one among them
  // (started before a crash) is waited for: a replacement already under way. The rest go, after
  // the kept ones joined.
  const keep = [...fresh].sort((a, b) => Number(b.state === 'joined') - Number(a.state === 'joined') || byName(a, b)).slice(0, n);
  for (const x of keep) if (x.state === 'booting') steps.push({ kind: 'wait-joined', name: x.name, imageVersion: v });
  for (const x of fresh.filter((f) => !keep.includes(f)).reverse()) steps.push({ kind: 'stop-node', name: x.name, imageVersion: v, reason: 'surplus' });
  let freshCount = keep.length;
  let joined = keep.length + old.filter((x) => x.state === 'joined').length;
  const add = (): void => {
    const name = names.next().value as string;
    steps.push({ kind: 'add-node', name, imageVersion: v }, { kind: 'wait-joined', name, imageVersion: v });
    freshCount++;
    joined++;
  };

  for (const o of old) {
    if (o.state === 'joined') {
      // Stop it only when N joined nodes remain without it: bring up replacements first.
      while (joined - 1 < n && freshCount < n) add();
      joined--;
    }
    steps.push({ kind: 'stop-node', name: o.name, imageVersion: o.imageVersion, reason: 'replaced' });
  }
  while (freshCount < n) add();

  // Every node of another image is gone by now: their measurements can go.
  const retire = new Set(observed.measurements.filter((s) => s.imageVersion !== v && isActiveSet(s)).map((s) => s.imageVersion));
  for (const r of [...retire].sort()) steps.push({ kind: 'retire-measurements', imageVersion: r });
  return steps;
}

/** One line per step, for logs and `--json` consumers that want text. */
export function describeStep(s: PlanStep): string {
  switch (s.kind) {
    case 'load-measurements':
      return `load the measurements of image ${s.imageVersion}`;
    case 'add-node':
      return `add ${s.name} on image ${s.imageVersion}`;
    case 'wait-joined':
      return `wait until ${s.name} attested and joined`;
    case 'stop-node':
      return `stop ${s.name} (image ${s.imageVersion}, ${s.reason})`;
    case 'retire-measurements':
      return `retire the measurements of image ${s.imageVersion}`;
  }
}
