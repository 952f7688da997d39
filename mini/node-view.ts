/**
 * What a node is doing, read from what it shows: its serial console (firmware and systemd
 * lines, the agent's one JSON record per step) and the key service's audit records for its
 * state disk (the quoted PCRs of a release, the reason of a refusal). Pure: the same inputs
 * give the same view, so the live table, `mini status` and the tests agree.
 */
import { agentSteps } from './boot-phases.js';
import type { AuditRecordLike } from './keyservice.js';
import { agentCrashLooping, AGENT_FAILED, MULTI_USER } from './qemu.js';
import { SPINNER_LINE, type ConsoleLine } from './serial.js';

/** Boot phases in order; `failed` and `stopped` end a boot. */
export const BOOT_PHASES = ['starting', 'firmware', 'kernel', 'system', 'agent', 'ready'] as const;
export type BootPhase = (typeof BOOT_PHASES)[number];

export interface NodeMilestones {
  /** Seconds since qemu started, when the console first showed each. */
  firmware?: number;
  kernel?: number;
  system?: number;
  agent?: number;
  attested?: number;
  disk?: number;
  joined?: number;
  done?: number;
}

export interface NodeView {
  name: string;
  image: string;
  /** The image's version (recorded in the mini state when the node was made). */
  imageVersion?: string;
  /** running: qemu runs; done: the agent finished; failed: see `failure`; stopped: not running (never started, powered off, or gone). */
  state: 'running' | 'done' | 'failed' | 'stopped';
  phase: BootPhase;
  /** The agent's last step record, e.g. "attest retrying (3)". */
  agentStep?: string;
  attested: boolean;
  /** Enforced PCRs of the measurements whose expected value the released quote holds. */
  attestedPcrs: number[];
  /** The measurements the key service matched (its label). */
  measurements?: string;
  disk?: 'formatted' | 'opened';
  joined: boolean;
  /** 'kubeadm join' (first join, the strict kubeadm stand-in) or 'rejoin' (credentials on the state disk). */
  joinedBy?: 'kubeadm join' | 'rejoin';
  elapsedSeconds: number;
  milestones: NodeMilestones;
  /**
   * bootFroze: the guest stopped (GUEST_FATAL) before the agent printed anything, so nothing
   * of the node's disk, TPM or key service state was touched: booting it again is safe.
   */
  failure?: { reason: string; code?: string; consoleTail: string[]; bootFroze?: boolean };
  pids: { qemu?: number; swtpm?: number };
}

export interface NodeObservation {
  name: string;
  image: string;
  lines: readonly ConsoleLine[];
  /** Audit records that name this node's state disk. */
  audit: readonly AuditRecordLike[];
  /** measurements.json's pcrs (what was enforced). */
  measurements?: Record<string, { expected: string; enforced?: boolean }>;
  qemuRunning: boolean;
  pids: { qemu?: number; swtpm?: number };
  elapsedSeconds: number;
  /** True when the watcher gave up waiting (the boot timeout). */
  timedOut?: boolean;
  /** Powered off on purpose (stopNode, down --keep-state): not a failure. */
  stoppedOnPurpose?: boolean;
}

/**
 * The guest cannot go on: a kernel panic, or systemd freezing after it failed to start (seen
 * here on a host at load 30: "Failed to fork off sandboxing environment for executing
 * generators: Protocol error", "Failed to start up manager", "Freezing execution").
 */
export const GUEST_FATAL = /Kernel panic - not syncing|Freezing execution|Failed to start up manager/;
const KERNEL_LINE = /^\[\s*\d+\.\d+\]|Linux version /;
const SYSTEM_LINE = /Switching root|Starting initrd-switch-root|Switch Root\.\.\./;
const AGENT_LINE = /Starting sextant-agent|Starting .*sextant boot agent/;

const tenth = (t: number | undefined): number | undefined => (t === undefined ? undefined : Math.round(t * 10) / 10);

function firstAt(lines: readonly ConsoleLine[], re: RegExp): number | undefined {
  return tenth(lines.find((l) => re.test(l.text))?.t);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function describeStep(r: Record<string, unknown>): string {
  const step = str(r.step) ?? str(r.event) ?? '?';
  const outcome = str(r.outcome) ?? '';
  if (outcome === 'retrying') return `${step} retrying (${String(r.attempt ?? '?')}${r.code ? `, ${String(r.code)}` : ''})`;
  if (outcome === 'failed') return `${step} failed (${String(r.code ?? '?')})`;
  return `${step} ${outcome}`.trim();
}

export function consoleTailLines(lines: readonly ConsoleLine[], n: number): string[] {
  return lines
    .filter((l) => !SPINNER_LINE.test(l.text))
    .slice(-n)
    .map((l) => l.text.slice(0, 300));
}

export function nodeView(o: NodeObservation): NodeView {
  const { lines } = o;
  const steps = agentSteps(lines);
  const done = (step: string) => steps.find((s) => s.record.step === step && s.record.outcome === 'done');
  const ms: NodeMilestones = {
    firmware: tenth(lines[0]?.t),
    kernel: firstAt(lines, KERNEL_LINE),
    system: firstAt(lines, SYSTEM_LINE),
    agent: firstAt(lines, AGENT_LINE) ?? tenth(steps[0]?.t),
    attested: tenth(done('attest')?.t),
    disk: tenth(done('disk')?.t),
    joined: tenth(done('join')?.t),
    done: tenth(done('done')?.t),
  };
  let phase: BootPhase = 'starting';
  if (ms.firmware !== undefined) phase = 'firmware';
  if (ms.kernel !== undefined) phase = 'kernel';
  if (ms.system !== undefined) phase = 'system';
  if (ms.agent !== undefined) phase = 'agent';
  if (lines.some((l) => MULTI_USER.test(l.text))) phase = 'ready';

  const release = [...o.audit].reverse().find((a) => a.decision === 'release');
  const quoted = (release?.pcrs ?? {}) as Record<string, string>;
  const attestedPcrs = release
    ? Object.entries(o.measurements ?? {})
        .filter(([pcr, m]) => m.enforced !== false && quoted[pcr]?.toLowerCase() === m.expected.toLowerCase())
        .map(([pcr]) => Number(pcr))
        .sort((a, b) => a - b)
    : [];
  const diskRec = done('disk')?.record;
  const diskState = str(diskRec?.state);
  const joinRec = done('join')?.record;
  const last = steps.at(-1)?.record;

  let failure: NodeView['failure'];
  const isDone = ms.done !== undefined;
  if (!isDone && !o.stoppedOnPurpose) {
    const refusal = [...o.audit].reverse().find((a) => a.decision === 'refuse');
    const failedStep = [...steps].reverse().find((s) => s.record.outcome === 'failed')?.record;
    const why = (): { reason: string; code?: string } => {
      if (refusal) return { reason: `key service refused (${String(refusal.stage ?? '?')}): ${String(refusal.reason ?? refusal.code)}`, code: str(refusal.code) };
      if (failedStep) return { reason: `agent step ${String(failedStep.step)} failed: ${String(failedStep.message ?? failedStep.code)}`, code: str(failedStep.code) };
      return { reason: 'no agent record on the console' };
    };
    let cause: string | undefined;
    const fatal = lines.find((l) => GUEST_FATAL.test(l.text));
    if (fatal) cause = `the guest stopped: ${fatal.text.trim().slice(0, 120)}`;
    else if (lines.some((l) => AGENT_FAILED.test(l.text)) || agentCrashLooping(lines)) cause = 'the agent unit keeps failing';
    else if (!o.qemuRunning && lines.length > 0) cause = 'qemu exited before the agent finished';
    else if (o.timedOut) cause = `no result after ${o.elapsedSeconds.toFixed(0)} s`;
    if (cause) {
      const w = why();
      failure = { reason: `${cause}: ${w.reason}`, code: w.code, consoleTail: consoleTailLines(lines, 25), ...(fatal && steps.length === 0 && { bootFroze: true }) };
    }
  }
  return {
    name: o.name,
    image: o.image,
    state: failure ? 'failed' : !o.qemuRunning ? 'stopped' : isDone ? 'done' : 'running',
    phase,
    agentStep: last ? describeStep(last) : undefined,
    attested: release !== undefined && done('attest') !== undefined,
    attestedPcrs,
    measurements: str(release?.measurements),
    disk: diskState === 'formatted' || diskState === 'opened' ? diskState : undefined,
    joined: joinRec !== undefined,
    joinedBy: joinRec ? (/kubeadm-join/.test(JSON.stringify(joinRec)) ? 'kubeadm join' : 'rejoin') : undefined,
    elapsedSeconds: o.elapsedSeconds,
    milestones: ms,
    failure,
    pids: o.pids,
  };
}

/** The fields whose change is worth a line (elapsed time alone is not). */
export function viewKey(v: NodeView): string {
  return JSON.stringify([v.state, v.phase, v.agentStep, v.attested, v.attestedPcrs, v.disk, v.joined, v.failure?.reason, v.pids]);
}
