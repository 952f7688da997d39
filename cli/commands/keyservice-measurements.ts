import type { CommandSpec } from '../command.js';
import { bool, str } from '../command.js';
import { fail } from '../../lib/errors.js';
import { adminLoad, adminRetire, adminSocketPath, adminStatus, type MeasurementSetView } from '../../keyservice/admin/client.js';
import { MAX_OVERLAP_MS } from '../../keyservice/admin/protocol.js';

// ---- sextant keyservice measurements status | load | retire (the running service's admin socket) ----

const SOCKET_OPTIONS = {
  'state-dir': { type: 'string', valueName: 'DIR', description: "the running service's --state-dir (its default admin socket, docs/rollout.md)" },
  'admin-socket': { type: 'string', valueName: 'PATH', description: "the running service's admin socket (its start line's adminSocket)" },
} as const;

function socketOf(v: Record<string, unknown>): string {
  const s = str(v as never, 'admin-socket');
  const d = str(v as never, 'state-dir');
  if ((s === undefined) === (d === undefined)) fail('USAGE', 'give either --state-dir DIR or --admin-socket PATH');
  return s ?? adminSocketPath(d!);
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

/** `30m`, `2h`, `1d`, `90s`, `0` (retire the replaced set at once). */
export function parseOverlap(s: string): number {
  const m = /^([0-9]{1,12})(ms|s|m|h|d)?$/.exec(s);
  const ms = m ? Number(m[1]) * UNITS[m[2] ?? (m[1] === '0' ? 'ms' : 'none')] : NaN;
  if (!Number.isSafeInteger(ms) || ms > MAX_OVERLAP_MS) fail('INVALID_ARGUMENT', `--overlap ${s}: give a duration such as 30m, 2h, 1d or 0 (at most 366d)`);
  return ms;
}

const row = (s: MeasurementSetView) => `${s.state.padEnd(8)} ${s.imageVersion.padEnd(10)} ${s.label}${s.acceptedUntil ? `  (accepted until ${s.acceptedUntil})` : ''}`;

const status: CommandSpec<{ ok: true; sets: MeasurementSetView[]; highWaterVersion: string }> = {
  path: ['keyservice', 'measurements', 'status'],
  summary: "the running key service's measurement sets: current, overlap (until when), retired; the high-water mark",
  options: SOCKET_OPTIONS,
  async run(ctx) {
    return { ok: true, ...(await adminStatus(socketOf(ctx.values))) };
  },
  render: (r) => [...r.sets.map(row), `high-water mark ${r.highWaterVersion} (older files are refused MEASUREMENTS_ROLLBACK)`].join('\n'),
};

const load: CommandSpec<{ ok: true; loaded: MeasurementSetView; previous?: MeasurementSetView }> = {
  path: ['keyservice', 'measurements', 'load'],
  summary: 'load a signed measurements file into the running key service; the set it replaces stays accepted for --overlap',
  description: `
The service checks the signature with its own key, then the image version against its
high-water mark: an older file is refused MEASUREMENTS_ROLLBACK, another file of the same
version MEASUREMENTS_VERSION_REUSED, and nothing changes, unless --force (audited). With
--store etcd every replica enforces the new set. docs/rollout.md.`,
  args: 'FILE',
  options: {
    sig: { type: 'string', valueName: 'FILE.sig', description: 'its signature (default FILE.sig)' },
    overlap: { type: 'string', valueName: 'DURATION', description: 'how long the replaced set stays accepted: 30m, 2h, 1d, 0 (default: the service\'s rollout window, 24h)' },
    force: { type: 'boolean', description: 'load an older file (or another file of the same version) anyway; written to the audit log' },
    ...SOCKET_OPTIONS,
  },
  async run(ctx) {
    const overlap = str(ctx.values, 'overlap');
    const r = await adminLoad(socketOf(ctx.values), {
      measurementsFile: ctx.positionals[0],
      signatureFile: str(ctx.values, 'sig'),
      ...(overlap !== undefined && { overlapMs: parseOverlap(overlap) }),
      force: bool(ctx.values, 'force'),
    });
    return { ok: true, ...r };
  },
  render: (r) => [`loaded: ${row(r.loaded)}`, ...(r.previous ? [`previous: ${row(r.previous)}`] : [])].join('\n'),
};

const retire: CommandSpec<{ ok: true; retired: MeasurementSetView }> = {
  path: ['keyservice', 'measurements', 'retire'],
  summary: 'end an overlap window now: nodes matching only that image version are refused from then on',
  args: 'VERSION',
  options: SOCKET_OPTIONS,
  async run(ctx) {
    return { ok: true, ...(await adminRetire(socketOf(ctx.values), { imageVersion: ctx.positionals[0] })) };
  },
  render: (r) => `retired: ${row(r.retired)}`,
};

export const keyserviceMeasurementsCommands: CommandSpec<any>[] = [status, load, retire];
