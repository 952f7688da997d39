import { readFile } from 'node:fs/promises';
import { algId } from '../../measurements/eventlog/types.js';
import { SextantError } from '../../lib/errors.js';
import {
  compareWithQuote,
  explainEventMatch,
  explainQuoteComparison,
  matchEvents,
  type EventMatchReport,
  type ExpectedEvent,
  type QuoteComparison,
} from '../../measurements/eventlog/compare.js';
import { parsePcrList, requireStr } from '../args.js';
import { str, type CommandContext, type CommandSpec } from '../command.js';
import { eventLogToJson, type EventJson } from '../../measurements/eventlog/json.js';
import { parseEventLog, type EventLog } from '../../measurements/eventlog/parse.js';
import { readEventLogFile, readEventLogStream } from '../../measurements/eventlog/read.js';
import type { NotReplayed, Pcr0Start } from '../../measurements/eventlog/replay.js';
import type { EventLogFormat } from '../../measurements/eventlog/parse.js';
import { parseUserspaceLog, replayWithUserspace, type CombinedReplay, type RecordCheck } from '../../measurements/eventlog/userspace.js';

async function loadLog(ctx: CommandContext): Promise<EventLog> {
  const file = ctx.positionals[0];
  const bytes = file === '-' ? await readEventLogStream(process.stdin) : await readEventLogFile(file);
  return parseEventLog(bytes);
}

interface ReplayResult {
  format: EventLogFormat;
  banks: Record<string, Record<string, string>>;
  /** Banks the log declares that this Node cannot hash, with the PCRs they leave unchecked. */
  notReplayed?: NotReplayed[];
  /** Present when PCR 0 does not start at zero (StartupLocality 3/4, H-CRTM). */
  pcr0Start?: Pcr0Start;
  /** With --userspace-log: each record checked against its content (its digests are in "banks" too). */
  userspace?: { ok: boolean; records: RecordCheck[] };
}

const USERSPACE_OPTION = {
  type: 'string',
  valueName: 'LOG',
  description: "systemd's userspace measurement log (/run/log/systemd/tpm2-measure.log), replayed after FILE",
} as const;

/** The firmware log, then the userspace log on top when --userspace-log is given. */
async function loadReplay(ctx: CommandContext, log: EventLog): Promise<CombinedReplay> {
  const file = str(ctx.values, 'userspace-log');
  const records = file === undefined ? [] : parseUserspaceLog(await readEventLogFile(file));
  return replayWithUserspace(log, records);
}

const replay: CommandSpec<ReplayResult> = {
  path: ['eventlog', 'replay'],
  summary: 'replay a TCG event log into the PCR values it should have produced, per bank',
  args: 'FILE',
  description: `FILE is a TCG firmware event log (e.g. /sys/kernel/security/tpm0/binary_bios_measurements), or - for stdin:
crypto-agile (TPM 2.0, every bank it declares, SM3 and SHA-3 included) or TCG 1.2 (SHA-1 only).
--json prints {"format":"crypto-agile"|"tcg1.2-sha1","banks":{"sha256":{"0":"<hex>",...},...}} with every PCR the
log touches; "notReplayed" names a declared bank this Node cannot hash and its PCRs; "pcr0Start" says why PCR 0
does not start at zero (StartupLocality 3/4, H-CRTM). A log of another format (CEL, IMA) fails with
EVENTLOG_FORMAT_UNSUPPORTED. --userspace-log adds systemd's userspace measurements (PCR 11 boot phases, PCR 15
machine-id/file systems/volume keys) on top and checks each record against its content: "userspace":{"ok",
"records":[{"index","pcr","eventType","string","status":"verified"|"mismatch"|"unverifiable"}]}; exit 1 on a mismatch.`,
  options: { 'userspace-log': USERSPACE_OPTION },
  async run(ctx) {
    const withUserspace = str(ctx.values, 'userspace-log') !== undefined;
    const r = await loadReplay(ctx, await loadLog(ctx));
    return {
      format: r.format,
      banks: r.banks,
      ...(r.notReplayed.length > 0 && { notReplayed: r.notReplayed }),
      ...(r.pcr0.source !== 'reset' && { pcr0Start: r.pcr0 }),
      ...(withUserspace && { userspace: { ok: r.userspace.every((c) => c.status !== 'mismatch'), records: r.userspace } }),
    };
  },
  exitCode: (r) => (r.userspace && !r.userspace.ok ? 1 : 0),
  render(r) {
    const lines: string[] = [`format ${r.format}`];
    if (r.pcr0Start) lines.push(`PCR 0 starts at locality ${r.pcr0Start.locality} (${r.pcr0Start.source})`);
    for (const n of r.notReplayed ?? []) lines.push(`${n.alg.padEnd(7)} not replayed: ${n.reason} (PCRs ${n.pcrs.join(',')})`);
    for (const [bank, pcrs] of Object.entries(r.banks)) {
      for (const [pcr, value] of Object.entries(pcrs ?? {})) lines.push(`${bank.padEnd(7)} ${pcr.padStart(2)}  ${value}`);
    }
    for (const c of r.userspace?.records ?? []) {
      const what = `${c.eventType ?? 'record'} ${c.string === undefined ? '' : JSON.stringify(c.string)}`.trim();
      lines.push(`userspace ${String(c.index).padStart(3)}  PCR ${String(c.pcr).padStart(2)}  ${c.status.padEnd(12)} ${what}${c.reason ? ` (${c.reason})` : ''}`);
    }
    return lines.join('\n');
  },
};

interface ShowResult extends ReturnType<typeof eventLogToJson> {}

const show: CommandSpec<ShowResult> = {
  path: ['eventlog', 'show'],
  summary: 'print the events of a TCG event log, one a line, decoded',
  args: 'FILE',
  description: `Each line: index, PCR, event type, digest (first 16 hex digits of the --bank digest), description.
--json prints {"format","specId":{...},"banks":["sha1",...],"events":[{"index","offset","pcr","type","typeCode","digests":{"sha256":"<hex>",...},"description","data"}]}.`,
  options: {
    pcr: { type: 'string', valueName: 'LIST', description: 'only events of these PCRs, e.g. 4 or 0-7,9' },
    bank: { type: 'string', valueName: 'ALG', description: 'digest shown in the text output (default: sha256, or the log\'s first bank when it has no sha256)' },
  },
  async run(ctx) {
    const pcrOpt = str(ctx.values, 'pcr');
    const wanted = pcrOpt === undefined ? undefined : new Set(parsePcrList(pcrOpt));
    const log = await loadLog(ctx);
    return eventLogToJson(log, (e) => wanted === undefined || wanted.has(e.pcr));
  },
  render(r, ctx) {
    const bank = str(ctx.values, 'bank') ?? (r.banks.includes('sha256') ? 'sha256' : r.banks[0]);
    const typeWidth = Math.max(0, ...r.events.map((e) => e.type.length));
    return r.events.map((e: EventJson) => {
      const d = e.digests[bank];
      const digest = d === undefined ? '-'.padEnd(16) : d.slice(0, 16);
      return `${String(e.index).padStart(4)}  PCR ${String(e.pcr).padStart(2)}  ${e.type.padEnd(typeWidth)}  ${digest}  ${e.description}`;
    }).join('\n');
  },
};


interface CompareResult {
  ok: boolean;
  quote: QuoteComparison[];
  events?: EventMatchReport;
}

const BANK_NAMES = ['sha1', 'sha256', 'sha384', 'sha512', 'sm3_256', 'sha3_256', 'sha3_384', 'sha3_512'];

function bad(message: string): never {
  throw new SextantError({ code: 'INVALID_ARGUMENT', message });
}

function hexMap(v: unknown, where: string): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${where} must be an object of PCR index -> hex`);
  for (const [k, x] of Object.entries(v)) {
    if (!/^\d{1,2}$/.test(k) || typeof x !== 'string' || !/^(0x)?[0-9a-fA-F]+$/.test(x)) bad(`${where}.${k} must be a PCR index -> hex string`);
  }
  return v as Record<string, string>;
}

function expectedEvents(v: unknown): ExpectedEvent[] {
  if (!Array.isArray(v)) bad('"events" must be an array');
  return v.map((e: unknown, i) => {
    const o = e as Partial<ExpectedEvent> | null;
    if (typeof o !== 'object' || o === null || !Number.isInteger(o.pcr) || typeof o.digest !== 'string' || !/^[0-9a-fA-F]+$/.test(o.digest)) {
      bad(`events[${i}] must have "pcr" (integer) and "digest" (hex)`);
    }
    return { pcr: o.pcr!, digest: o.digest, type: typeof o.type === 'string' ? o.type : undefined, description: typeof o.description === 'string' ? o.description : undefined };
  });
}

async function readExpectation(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new SextantError({ code: 'FILE_NOT_FOUND', message: `cannot read ${file}: ${(e as Error).message}`, cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    bad(`${file} is not JSON: ${(e as Error).message}`);
  }
}

const compare: CommandSpec<CompareResult> = {
  path: ['eventlog', 'compare'],
  summary: 'compare an event log with expected PCRs and events; exit 1 when they differ',
  args: 'FILE',
  description: `--expect takes the JSON of \`sextant measure uki --json\` ({"pcrs":{...},"events":[{"pcr","digest","type","description"}]}),
of \`sextant eventlog replay --json\` or a quote ({"banks":{"sha256":{"0":"<hex>"}}}). Quoted PCRs are compared with
the replay; expected events are paired with the log's events per PCR, naming the component that differs.`,
  options: {
    expect: { type: 'string', valueName: 'JSON', description: 'expected PCRs and/or events', required: true },
    bank: { type: 'string', valueName: 'ALG', description: 'bank of "pcrs" and "events": sha1, sha256, sha384, sha512, sm3_256, sha3_256, ...', default: 'sha256' },
    pcrs: { type: 'string', valueName: 'LIST', description: 'compare only these PCRs, e.g. 0-9,11 (default: every PCR in --expect)' },
    'userspace-log': USERSPACE_OPTION,
  },
  async run(ctx) {
    const pcrsOpt = str(ctx.values, 'pcrs');
    const only = pcrsOpt === undefined ? undefined : new Set(parsePcrList(pcrsOpt));
    const select = (q: Record<string, string>): number[] => Object.keys(q).map(Number).filter((p) => only === undefined || only.has(p));
    const bank = str(ctx.values, 'bank') ?? 'sha256';
    if (algId(bank) === undefined) bad(`--bank must be a bank name: ${BANK_NAMES.join(', ')}`);
    const expectFile = requireStr(ctx.values, 'expect');
    const exp = (await readExpectation(expectFile)) as { pcrs?: unknown; banks?: unknown; events?: unknown } | null;
    if (typeof exp !== 'object' || exp === null) bad('--expect must hold a JSON object');
    if (exp.pcrs === undefined && exp.banks === undefined && exp.events === undefined) bad('--expect has none of "pcrs", "banks", "events"');
    const log = await loadLog(ctx);
    const replayed = (await loadReplay(ctx, log)).banks;
    const quote: QuoteComparison[] = [];
    if (exp.pcrs !== undefined) {
      const q = hexMap(exp.pcrs, 'pcrs');
      quote.push(compareWithQuote(replayed, q, { bank, pcrs: select(q) }));
    }
    if (exp.banks !== undefined) {
      if (typeof exp.banks !== 'object' || exp.banks === null) bad('"banks" must be an object');
      for (const [b, v] of Object.entries(exp.banks)) {
        if (algId(b) === undefined) bad(`"banks" has an unknown bank ${b}`);
        const q = hexMap(v, `banks.${b}`);
        quote.push(compareWithQuote(replayed, q, { bank: b, pcrs: select(q) }));
      }
    }
    const wanted = exp.events === undefined ? undefined : expectedEvents(exp.events).filter((e) => only === undefined || only.has(e.pcr));
    const events = wanted === undefined ? undefined : matchEvents(wanted, log.events, { bank });
    const ok = quote.every((c) => c.ok) && (events?.ok ?? true);
    return { ok, quote, ...(events && { events }) };
  },
  render(r) {
    const lines: string[] = [];
    for (const c of r.quote) {
      for (const p of c.compared) lines.push(`${c.bank.padEnd(7)} PCR ${String(p.pcr).padStart(2)}  ${p.ok ? 'ok      ' : 'DIFFERS '} replay ${p.replayed}${p.ok ? '' : `  expected ${p.quoted ?? '(absent)'}`}`);
      lines.push(explainQuoteComparison(c));
    }
    if (r.events) for (const m of r.events.results) lines.push(`${m.status.padEnd(10)} ${explainEventMatch(m)}`);
    lines.push(r.ok ? 'ok: the log matches' : 'DIFFERS: the log does not match');
    return lines.join('\n');
  },
  exitCode: (r) => (r.ok ? 0 : 1),
};

export const eventlogCommands: CommandSpec<any>[] = [replay, show, compare];
