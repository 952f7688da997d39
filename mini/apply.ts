/**
 * `sextant mini apply FILE`: reconciles the mini cluster with a declared config. Observes
 * (nodes with their image version and state, the key service's measurement sets), plans
 * (mini/reconcile/plan.ts) and runs the steps one at a time: the new image's measurements are
 * signed with the cluster's throwaway key and loaded next to the current ones through the key
 * service's admin socket, each old node is replaced (a node on the new image boots, attests
 * and joins, then the old one is stopped by PID), and the old measurements are retired once no
 * node of that image remains. A step that fails stops the run (MINI_APPLY_FAILED naming it);
 * `apply` run again plans from what it left and continues.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { adminLoad, adminRetire, adminSocketPath, adminStatus, type MeasurementSetView } from '../keyservice/admin/client.js';
import { SextantError } from '../lib/errors.js';
import { MiniCluster, type KeyServiceView } from './cluster.js';
import { checkImageDir, IMAGE_FILES, imageVersionOf } from './image.js';
import { signFile } from './keyservice.js';
import type { NodeView } from './node-view.js';
import type { MiniConfig } from './reconcile/config.js';
import { describeStep, planRollout, type ObservedCluster, type ObservedNode, type PlanStep } from './reconcile/plan.js';
import type { Log } from './swtpm.js';

/** What the executor needs of the key service's measurement sets (keyservice/admin/client.ts on a real cluster). */
export interface MeasurementsAdmin {
  status(): Promise<{ sets: Pick<MeasurementSetView, 'imageVersion' | 'label' | 'state'>[] }>;
  load(o: { measurementsFile: string; overlapMs?: number }): Promise<unknown>;
  retire(imageVersion: string): Promise<unknown>;
}

/** What the executor needs of the nodes (MiniCluster on a real cluster). */
export interface NodeDriver {
  nodes(): Promise<ObservedNode[]>;
  add(name: string, imageVersion: string): Promise<void>;
  /** Until the node attested and joined (its view), or a failure (MINI_APPLY_FAILED). */
  waitJoined(name: string): Promise<NodeView | undefined>;
  stop(name: string): Promise<void>;
}

export type ApplyEvent =
  | { event: 'plan'; steps: PlanStep[] }
  | { event: 'step'; index: number; total: number; step: PlanStep; status: 'start' | 'done' | 'failed'; seconds?: number; message?: string }
  | { event: 'node'; view: NodeView };

export interface StepRecord {
  step: PlanStep;
  seconds: number;
  /** wait-joined: the label of the measurements the node attested against. */
  measurements?: string;
}

/** The observed state the planner takes. */
export async function observe(nodes: NodeDriver, admin: MeasurementsAdmin): Promise<ObservedCluster> {
  const [n, s] = await Promise.all([nodes.nodes(), admin.status()]);
  return { nodes: n, measurements: s.sets.map((x) => ({ imageVersion: x.imageVersion, state: x.state })) };
}

/**
 * Runs the steps in order; the first that fails stops the run with MINI_APPLY_FAILED naming
 * it (what was done stays done: planning again continues from there).
 */
export async function executePlan(
  steps: PlanStep[],
  o: { nodes: NodeDriver; admin: MeasurementsAdmin; measurementsFile: (imageVersion: string) => Promise<string>; overlapMs?: number; onEvent?: (e: ApplyEvent) => void; signal?: AbortSignal },
): Promise<StepRecord[]> {
  const done: StepRecord[] = [];
  for (const [index, step] of steps.entries()) {
    if (o.signal?.aborted) throw new SextantError({ code: 'MINI_APPLY_FAILED', message: `interrupted before step ${index + 1}/${steps.length} (${describeStep(step)}); sextant mini apply again continues` });
    const t0 = Date.now();
    o.onEvent?.({ event: 'step', index, total: steps.length, step, status: 'start' });
    let measurements: string | undefined;
    try {
      switch (step.kind) {
        case 'load-measurements':
          await o.admin.load({ measurementsFile: await o.measurementsFile(step.imageVersion), overlapMs: o.overlapMs });
          break;
        case 'add-node':
          await o.nodes.add(step.name, step.imageVersion);
          break;
        case 'wait-joined':
          measurements = (await o.nodes.waitJoined(step.name))?.measurements;
          break;
        case 'stop-node':
          await o.nodes.stop(step.name);
          break;
        case 'retire-measurements':
          await o.admin.retire(step.imageVersion);
          break;
      }
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      o.onEvent?.({ event: 'step', index, total: steps.length, step, status: 'failed', seconds: (Date.now() - t0) / 1000, message });
      const code = e instanceof SextantError ? ` (${e.code})` : '';
      throw new SextantError({ code: 'MINI_APPLY_FAILED', message: `step ${index + 1}/${steps.length}, ${describeStep(step)}, failed${code}: ${message}\nsextant mini apply again continues from here`, cause: e });
    }
    const seconds = (Date.now() - t0) / 1000;
    done.push({ step, seconds, ...(measurements !== undefined && { measurements }) });
    o.onEvent?.({ event: 'step', index, total: steps.length, step, status: 'done', seconds });
  }
  return done;
}

/** A node as the planner sees it: joined once its agent finished with a join; a finished agent without one failed. */
export function observedNode(v: NodeView): ObservedNode {
  const state = v.state === 'running' ? 'booting' : v.state === 'done' ? (v.joined ? 'joined' : 'failed') : v.state;
  return { name: v.name, imageVersion: v.imageVersion ?? 'unknown', state };
}

function failureText(v: NodeView): string {
  return [`${v.name} failed: ${v.failure?.reason ?? `it ended ${v.state} without joining`}`, ...(v.failure?.consoleTail ?? []).slice(-10).map((l) => `  | ${l}`)].join('\n');
}

/** The nodes of a MiniCluster: new ones boot `image`; stops are by PID (ACPI first), the machine removed. */
export function clusterDriver(c: MiniCluster, image: string, o: { timeoutMs?: number; onChange?: (v: NodeView) => void; signal?: AbortSignal } = {}): NodeDriver {
  return {
    nodes: async () => (await c.listNodes()).map(observedNode),
    add: async (name, imageVersion) => {
      await c.startNode({ name, image, imageVersion });
    },
    waitJoined: async (name) => {
      const [v] = await c.waitForNodes([name], { timeoutMs: o.timeoutMs, onChange: (x) => o.onChange?.(x), signal: o.signal });
      if (v.state !== 'done' || !v.joined) throw new SextantError({ code: 'MINI_NODE_FAILED', message: failureText(v) });
      return v;
    },
    stop: (name) => c.stopNode(name, { remove: true }),
  };
}

/** The key service's admin socket (adminSocketPath: a folder in $TMPDIR named by the state dir). */
export function socketAdmin(stateDir: string): MeasurementsAdmin {
  const socket = adminSocketPath(stateDir);
  return {
    status: () => adminStatus(socket),
    load: (x) => adminLoad(socket, { measurementsFile: x.measurementsFile, overlapMs: x.overlapMs }),
    retire: (imageVersion) => adminRetire(socket, { imageVersion }),
  };
}

export interface ApplyOptions {
  dir: string;
  config: MiniConfig;
  /** How long the old measurements stay accepted after the new ones load (the key service's default when absent). */
  overlapMs?: number;
  timeoutMs?: number;
  onEvent?: (e: ApplyEvent) => void;
  signal?: AbortSignal;
  log?: Log;
  /** Tests: another admin than the key service's socket. */
  admin?: MeasurementsAdmin;
}

export interface ApplyResult {
  ok: true;
  dir: string;
  imageVersion: string;
  plan: PlanStep[];
  steps: StepRecord[];
  nodes: NodeView[];
  keyservice: KeyServiceView;
  seconds: number;
}

/** The declared image checked against its folder: its measurements must carry the declared version. */
export function checkDeclaredImage(config: MiniConfig): void {
  checkImageDir(config.image);
  const v = imageVersionOf(config.image);
  if (v !== config.imageVersion) {
    throw new SextantError({ code: 'IMAGE_MISMATCH', message: `${config.image}/${IMAGE_FILES.measurements} is image version ${JSON.stringify(v ?? null)}, the config declares ${config.imageVersion}` });
  }
}

export async function miniApply(o: ApplyOptions): Promise<ApplyResult> {
  const t0 = Date.now();
  const { config } = o;
  checkDeclaredImage(config);
  const c = await MiniCluster.open({ dir: o.dir, log: o.log });
  try {
    // A cluster that does not exist yet starts with the declared image's measurements current.
    const ks = await c.ensureKeyService(checkImageDir(config.image));
    const admin = o.admin ?? socketAdmin(ks.stateDir);
    const nodes = clusterDriver(c, config.image, { timeoutMs: o.timeoutMs, signal: o.signal, onChange: (view) => o.onEvent?.({ event: 'node', view }) });
    const plan = planRollout({ imageVersion: config.imageVersion, nodes: config.nodes }, await observe(nodes, admin));
    o.onEvent?.({ event: 'plan', steps: plan });
    const measurementsFile = async (version: string): Promise<string> => {
      // Signed with the cluster's throwaway key, the only one its key service trusts.
      const signKey = ks.files.measurementsSignKey;
      if (!signKey) throw new SextantError({ code: 'KEY_INVALID', message: `the cluster in ${c.dir} has no throwaway measurements key to sign image ${version}'s measurements with` });
      const dir = path.join(c.dir, 'keyservice', 'images', version);
      await mkdir(dir, { recursive: true });
      const file = path.join(dir, IMAGE_FILES.measurements);
      await copyFile(path.join(config.image, IMAGE_FILES.measurements), file);
      await signFile(file, signKey, o.log);
      return file;
    };
    const steps = await executePlan(plan, { nodes, admin, measurementsFile, overlapMs: o.overlapMs, onEvent: o.onEvent, signal: o.signal });
    const status = await c.status();
    return { ok: true, dir: c.dir, imageVersion: config.imageVersion, plan, steps, nodes: status.nodes, keyservice: status.keyservice, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await c.close();
  }
}
