import type { CommandSpec } from '../command.js';
import { str } from '../command.js';
import { verifyAuditLog } from '../../keyservice/audit/log.js';

const auditVerify: CommandSpec<{ ok: true; file: string; records: number; lastRecordSha256: string; headChecked: boolean }> = {
  path: ['keyservice', 'audit', 'verify'],
  summary: 'check the hash chain of a key service audit log (edited, dropped or reordered records)',
  args: 'FILE',
  positionals: { min: 1, max: 1 },
  options: {
    head: { type: 'string', valueName: 'FILE', description: 'head file to check the last record against (default: FILE.head when present)' },
  },
  async run(ctx) {
    const file = ctx.positionals[0];
    const r = await verifyAuditLog(file, { headFile: str(ctx.values, 'head') });
    return { ok: true, file, records: r.count, lastRecordSha256: r.last, headChecked: r.headChecked };
  },
  render: (r) => `${r.file}: ${r.records} records, chain intact${r.headChecked ? ', head matches' : ' (no head file: the last record is not covered)'}`,
};

export const keyserviceCommands: CommandSpec<any>[] = [auditVerify];
