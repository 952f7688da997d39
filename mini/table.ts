/** The per-node table `sextant mini up` redraws and `mini status` prints: plain text, one row per node. */
import type { NodeView } from './node-view.js';

export const TABLE_COLUMNS = ['NODE', 'IMAGE', 'BOOT PHASE', 'AGENT STEP', 'ATTESTED (PCRs matched)', 'DISK', 'JOINED', 'ELAPSED'] as const;

function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function phaseOf(v: NodeView): string {
  if (v.state === 'failed') return `FAILED (${v.phase})`;
  if (v.state === 'stopped') return `stopped (${v.phase})`;
  if (v.state === 'done') return 'done';
  return v.phase;
}

export function tableRow(v: NodeView): string[] {
  return [
    v.name,
    v.imageVersion ?? '-',
    phaseOf(v),
    v.agentStep ?? '-',
    v.attested ? `yes (${v.attestedPcrs.join(' ') || 'none enforced'})` : '-',
    v.disk ?? '-',
    v.joined ? `yes (${v.joinedBy ?? '?'})` : '-',
    clock(v.elapsedSeconds),
  ];
}

/** Lines of the table, columns padded to their widest cell, each line cut at `width`. */
export function renderTable(views: readonly NodeView[], width = 160): string[] {
  const rows = [[...TABLE_COLUMNS], ...views.map(tableRow)];
  const widths = TABLE_COLUMNS.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').slice(0, width).trimEnd());
}

/** One line for a log that cannot redraw (not a terminal): what changed on one node. */
export function changeLine(v: NodeView): string {
  const [name, image, phase, step, attested, disk, joined, elapsed] = tableRow(v);
  return `${elapsed} ${name}: image ${image}; ${phase}; agent ${step}; attested ${attested}; disk ${disk}; joined ${joined}`;
}
