import { stat } from 'node:fs/promises';
import path from 'node:path';
import { bool, str, type CommandSpec } from '../command.js';
import { requireStr } from '../args.js';
import { fail } from '../../lib/errors.js';
import { AuditLog } from '../../keyservice/audit/log.js';
import { lockAuditLog } from '../../keyservice/audit-writer-lock.js';
import { LocalBindingStore } from '../../keyservice/binding/local-store.js';
import { EK_SHA256_RE, type DiskBinding } from '../../keyservice/binding/store.js';
import { UUID_RE } from '../../protocol/validate.js';

// ---- sextant keyservice disk list | rebind (docs/disk-binding.md) ----

const STATE_DIR = { type: 'string', valueName: 'DIR', description: "the key service's state directory (its disk-bindings/ folder)", required: true } as const;

function renderBinding(b: DiskBinding): string {
  const to = b.ekPublicSha256 === null ? 'unbound' : `ek-sha256 ${b.ekPublicSha256}`;
  return `${b.diskUuid}  ${to}  revision ${b.revision} (${b.cause}${b.nodeName ? `, node ${b.nodeName}` : ''}, ${b.time})`;
}

const list: CommandSpec<{ ok: true; bindings: DiskBinding[] }> = {
  path: ['keyservice', 'disk', 'list'],
  summary: 'list which node (EK public key SHA-256) each disk UUID is bound to',
  description: `
A disk UUID is bound to the EK of the node its key was first released to; other nodes are
refused with DISK_BOUND_ELSEWHERE. Reads STATE/disk-bindings; safe while the service runs.`,
  options: {
    'state-dir': STATE_DIR,
    disk: { type: 'string', valueName: 'UUID', description: 'only this disk' },
  },
  async run(ctx) {
    const store = LocalBindingStore.inStateDir(await requireDir(requireStr(ctx.values, 'state-dir')));
    const disk = str(ctx.values, 'disk');
    if (disk === undefined) return { ok: true, bindings: await store.list() };
    const b = await store.get(checkUuid(disk));
    return { ok: true, bindings: b ? [b] : [] };
  },
  render: (r) => (r.bindings.length ? r.bindings.map(renderBinding).join('\n') : 'no disk is bound'),
};

interface RebindResult {
  ok: true;
  diskUuid: string;
  from: string | null;
  to: string | null;
  revision: number;
  auditLog: string;
}

const rebind: CommandSpec<RebindResult> = {
  path: ['keyservice', 'disk', 'rebind'],
  summary: 'move a disk UUID to another node (its EK public key SHA-256), or unbind it',
  description: `
For a node whose TPM changed (mainboard replaced, TPM2_ChangeEPS) or a disk moved to another
machine on purpose. The new node's EK hash is in its refusal (DISK_BOUND_ELSEWHERE names it)
and in the key service's audit record of that refusal (ekPublicSha256). --unbind lets the
next node that attests take the disk. The change is audited (decision "disk-rebind") in the
key service's audit log before it is made; since that log has one writer, stop the key
service first (a running one makes this AUDIT_LOG_IN_USE). The binding changes only if
nobody changed it since it was read (else DISK_BINDING_CONFLICT).`,
  options: {
    'state-dir': STATE_DIR,
    disk: { type: 'string', valueName: 'UUID', description: 'the disk UUID (lowercase, as the node sends it)', required: true },
    'to-ek-sha256': { type: 'string', valueName: 'HEX', description: "the node to bind it to: SHA-256 of its EK public key (64 hex)" },
    unbind: { type: 'boolean', description: 'unbind instead: the next attested node to ask binds it' },
    reason: { type: 'string', valueName: 'TEXT', description: 'why (kept in the binding and the audit record)' },
    'audit-log': { type: 'string', valueName: 'FILE', description: "the key service's audit log (default STATE/audit.log)" },
  },
  async run(ctx) {
    const stateDir = requireStr(ctx.values, 'state-dir');
    const disk = checkUuid(requireStr(ctx.values, 'disk'));
    const toFlag = str(ctx.values, 'to-ek-sha256');
    const unbind = bool(ctx.values, 'unbind');
    if ((toFlag === undefined) === !unbind) fail('USAGE', 'give exactly one of --to-ek-sha256 HEX and --unbind');
    const to = toFlag === undefined ? null : toFlag.toLowerCase().replace(/^sha256:/, '');
    if (to !== null && !EK_SHA256_RE.test(to)) fail('USAGE', '--to-ek-sha256 must be 64 hex digits (SHA-256 of the EK public key)');
    const reason = str(ctx.values, 'reason');
    if (reason !== undefined && reason.length > 500) fail('USAGE', '--reason is at most 500 characters');
    await requireDir(stateDir);
    const auditLog = str(ctx.values, 'audit-log') ?? path.join(stateDir, 'audit.log');

    const lock = await lockAuditLog(auditLog, 'sextant keyservice disk rebind');
    try {
      const audit = await AuditLog.open(auditLog);
      try {
        const store = LocalBindingStore.inStateDir(stateDir);
        const cur = await store.get(disk);
        const from = cur?.ekPublicSha256 ?? null;
        const revision = (cur?.revision ?? 0) + 1;
        // Audited first: no binding changes without its durable record (as no key leaves without one).
        const change = { diskUuid: disk, from, to, revision, ...(reason !== undefined && { reason }) };
        await audit.append({ decision: 'disk-rebind', ...change });
        try {
          await store.rebind(disk, revision - 1, to, { cause: to === null ? 'admin-unbind' : 'admin-rebind', reason });
        } catch (e) {
          await audit.append({ decision: 'refuse', stage: 'disk-rebind', code: (e as { code?: string }).code ?? 'INTERNAL', ...change });
          throw e;
        }
        ctx.log(`disk ${disk}: ${from ?? 'unbound'} -> ${to ?? 'unbound'} (revision ${revision}), audited in ${auditLog}`);
        return { ok: true, diskUuid: disk, from, to, revision, auditLog };
      } finally {
        await audit.close();
      }
    } finally {
      await lock.release();
    }
  },
  render: (r) => `disk ${r.diskUuid} now ${r.to === null ? 'unbound' : `bound to ek-sha256 ${r.to}`} (revision ${r.revision}; was ${r.from ?? 'unbound'})`,
};

async function requireDir(d: string): Promise<string> {
  if (!(await stat(d).then((st) => st.isDirectory(), () => false))) fail('FILE_NOT_FOUND', `no state directory ${d}`);
  return d;
}

function checkUuid(s: string): string {
  if (!UUID_RE.test(s)) fail('USAGE', `--disk must be a lowercase UUID (as blkid prints it), got "${s.slice(0, 80)}"`);
  return s;
}

export const keyserviceDiskCommands: CommandSpec<any>[] = [list, rebind];
