import { parsePcrList } from '../args.js';
import { str, type CommandContext, type CommandSpec } from '../command.js';
import type { PcrBanks } from '../../measurements/pcr/extend.js';
import { eventLogToJson, type EventJson } from '../../measurements/eventlog/json.js';
import { parseEventLog, type EventLog } from '../../measurements/eventlog/parse.js';
import { readEventLogFile, readEventLogStream } from '../../measurements/eventlog/read.js';
import { replayEventLog } from '../../measurements/eventlog/replay.js';

async function loadLog(ctx: CommandContext): Promise<EventLog> {
  const file = ctx.positionals[0];
  const bytes = file === '-' ? await readEventLogStream(process.stdin) : await readEventLogFile(file);
  return parseEventLog(bytes);
}

interface ReplayResult {
  banks: PcrBanks;
}

const replay: CommandSpec<ReplayResult> = {
  path: ['eventlog', 'replay'],
  summary: 'replay a TCG event log into the PCR values it should have produced, per bank',
  args: 'FILE',
  description: `FILE is a crypto-agile TCG event log (e.g. /sys/kernel/security/tpm0/binary_bios_measurements), or - for stdin.
--json prints {"banks":{"sha256":{"0":"<hex>",...},...}} with every PCR the log touches.`,
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    return { banks: replayEventLog(await loadLog(ctx)) };
  },
  render(r) {
    const lines: string[] = [];
    for (const [bank, pcrs] of Object.entries(r.banks)) {
      for (const [pcr, value] of Object.entries(pcrs ?? {})) lines.push(`${bank.padEnd(7)} ${pcr.padStart(2)}  ${value}`);
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
--json prints {"specId":{...},"events":[{"index","offset","pcr","type","typeCode","digests":{"sha256":"<hex>",...},"description","data"}]}.`,
  options: {
    pcr: { type: 'string', valueName: 'LIST', description: 'only events of these PCRs, e.g. 4 or 0-7,9' },
    bank: { type: 'string', valueName: 'ALG', description: 'digest shown in the text output', default: 'sha256' },
  },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const pcrOpt = str(ctx.values, 'pcr');
    const wanted = pcrOpt === undefined ? undefined : new Set(parsePcrList(pcrOpt));
    const log = await loadLog(ctx);
    return eventLogToJson(log, (e) => wanted === undefined || wanted.has(e.pcr));
  },
  render(r, ctx) {
    const bank = str(ctx.values, 'bank') ?? 'sha256';
    const typeWidth = Math.max(0, ...r.events.map((e) => e.type.length));
    return r.events.map((e: EventJson) => {
      const d = e.digests[bank];
      const digest = d === undefined ? '-'.padEnd(16) : d.slice(0, 16);
      return `${String(e.index).padStart(4)}  PCR ${String(e.pcr).padStart(2)}  ${e.type.padEnd(typeWidth)}  ${digest}  ${e.description}`;
    }).join('\n');
  },
};

export const eventlogCommands: CommandSpec<any>[] = [replay, show];
