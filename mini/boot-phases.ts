/**
 * Boot phase timings from a node's serial console, stamped with the host's arrival time of each
 * line (the firmware and systemd's status lines carry no clock of their own; the kernel's
 * printk stamps give the kernel's start).
 */
import type { ConsoleLine } from './serial.js';

export interface BootMark {
  name: string;
  /** Seconds since qemu started, or undefined when the console never showed it. */
  t: number | undefined;
}

export interface BootPhase {
  name: string;
  seconds: number;
}

export interface AgentStep {
  t: number;
  record: Record<string, unknown>;
}

export interface BootTimeline {
  marks: BootMark[];
  /** Durations between consecutive marks that were both seen. */
  phases: BootPhase[];
  /** JSON records the agent printed (one per step), in console order. */
  agentSteps: AgentStep[];
}

const KERNEL_STAMP = /^\[\s*(\d+\.\d+)\]/;

function first(lines: readonly ConsoleLine[], re: RegExp): number | undefined {
  return lines.find((l) => re.test(l.text))?.t;
}

/** A JSON object somewhere in the line (journal+console prefixes it with `unit[pid]: `). */
export function jsonInLine(text: string): Record<string, unknown> | undefined {
  const i = text.indexOf('{');
  if (i < 0) return undefined;
  try {
    const v = JSON.parse(text.slice(i)) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Agent records: JSON objects with a `step` (or `event`) field. */
export function agentSteps(lines: readonly ConsoleLine[]): AgentStep[] {
  const out: AgentStep[] = [];
  for (const l of lines) {
    const r = jsonInLine(l.text);
    if (r && (typeof r.step === 'string' || typeof r.event === 'string')) out.push({ t: l.t, record: r });
  }
  return out;
}

export function bootTimeline(lines: readonly ConsoleLine[]): BootTimeline {
  // The kernel started when (host arrival - printk stamp) is smallest: the early lines arrive
  // in one burst once the serial console is up, the later ones as they are printed.
  let kernel: number | undefined;
  for (const l of lines) {
    const m = KERNEL_STAMP.exec(l.text);
    if (!m) continue;
    const start = l.t - Number(m[1]);
    if (kernel === undefined || start < kernel) kernel = start;
  }
  const marks: BootMark[] = [
    { name: 'qemu start', t: 0 },
    { name: 'firmware starts the UKI', t: first(lines, /BdsDxe: starting Boot/) },
    { name: 'kernel start', t: kernel === undefined ? undefined : Math.max(0, kernel) },
    { name: 'initrd switches root', t: first(lines, /Switching root|Starting initrd-switch-root|Switch Root\.\.\./) },
    { name: 'sextant-agent starting', t: first(lines, /Starting sextant-agent|Starting .*sextant boot agent/) },
    { name: 'multi-user target', t: first(lines, /Reached target .*Multi-User System/) },
  ];
  const steps = agentSteps(lines);
  if (steps.length) marks.push({ name: `agent: last step (${String(steps.at(-1)!.record.step ?? steps.at(-1)!.record.event)})`, t: steps.at(-1)!.t });
  const seen = marks.filter((m): m is { name: string; t: number } => m.t !== undefined).sort((a, b) => a.t - b.t);
  const phases: BootPhase[] = [];
  for (let i = 1; i < seen.length; i++) phases.push({ name: `${seen[i - 1].name} -> ${seen[i].name}`, seconds: seen[i].t - seen[i - 1].t });
  return { marks, phases, agentSteps: steps };
}

export function formatTimeline(tl: BootTimeline): string {
  const out = ['boot marks (s since qemu start):'];
  for (const m of tl.marks) out.push(`  ${m.t === undefined ? '     -' : m.t.toFixed(1).padStart(6)}  ${m.name}`);
  out.push('phases:');
  for (const p of tl.phases) out.push(`  ${p.seconds.toFixed(1).padStart(6)} s  ${p.name}`);
  if (tl.agentSteps.length) {
    out.push('agent steps (s since qemu start):');
    const t0 = tl.agentSteps[0].t;
    for (const s of tl.agentSteps) out.push(`  ${s.t.toFixed(1).padStart(6)} (+${(s.t - t0).toFixed(1)})  ${JSON.stringify(s.record).slice(0, 160)}`);
  }
  return out.join('\n');
}
