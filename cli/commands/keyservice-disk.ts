import { stat } from 'node:fs/promises';
import path from 'node:path';
import { bool, str, type CommandSpec } from '../command.js';
import { requireStr } from '../args.js';
import { fail } from '../../lib/errors.js';
import { LocalBindingStore } from '../../keyservice/binding/local-store.js';
import { rebindAudited } from '../../keyservice/binding/rebind.js';
import { EK_SHA256_RE, type DiskBinding, type DiskBindingStore } from '../../keyservice/binding/store.js';
import { openLocalBindingsAndAudit } from '../../keyservice/store/local.js';
import type { BindingsAndAudit } from '../../keyservice/store/store.js';
import { UUID_RE } from '../../protocol/validate.js';
import { ETCD_OPTIONS, etcdFlags } from './etcd-options.js';

// ---- sextant keyservice disk list | rebind (docs/disk-binding.md) ----

const STORE_OPTIONS = {
  'state-dir': { type: 'string', valueName: 'DIR', description: "the key service's state directory (its disk-bindings/ folder; the local store)" },
  store: { type: 'string', valueName: 'KIND', choices: ['local', 'etcd'], description: 'where the bindings are: local (default, --state-dir) or etcd (the replicas\' store; docs/ha.md)' },
  ...ETCD_OPTIONS,
} as const;

/** --store etcd with its endpoints, or the local --state-dir; exactly one of the two. */
function storeChoice(v: Record<string, unknown>): { etcd: NonNullable<ReturnType<typeof etcdFlags>> } | { stateDir: string } {
  const etcd = str(v as never, 'store') === 'etcd';
  const stateDir = str(v as never, 'state-dir');
  if (!etcd) {
    if (str(v as never, 'etcd-endpoints') !== undefined) fail('USAGE', '--etcd-endpoints needs --store etcd');
    if (stateDir === undefined) fail('USAGE', 'give --state-dir DIR (the local store) or --store etcd --etcd-endpoints URL[,URL...]');
    return { stateDir };
  }
  if (stateDir !== undefined) fail('USAGE', 'with --store etcd the bindings are in etcd: drop --state-dir');
  const c = etcdFlags(v);
  if (!c) fail('USAGE', '--store etcd needs --etcd-endpoints URL[,URL...]');
  return { etcd: c };
}

/** The bindings and the audit log of the chosen store (the local one holds the log's writer lock). */
async function openForRebind(v: Record<string, unknown>): Promise<BindingsAndAudit> {
  const where = storeChoice(v);
  if ('etcd' in where) {
    if (str(v as never, 'audit-log') !== undefined) fail('USAGE', 'with --store etcd the audit log is the chain in etcd: drop --audit-log');
    return (await import('../../keyservice/store/etcd/store.js')).openEtcdBindingsAndAudit(where.etcd);
  }
  const stateDir = await requireDir(where.stateDir);
  const auditPath = str(v as never, 'audit-log') ?? path.join(stateDir, 'audit.log');
  return openLocalBindingsAndAudit({ stateDir, auditPath, holder: 'sextant keyservice disk rebind' });
}

/** The bindings only (read-only: the local store needs no lock). */
async function openForList(v: Record<string, unknown>): Promise<{ bindings: DiskBindingStore; close(): Promise<void> }> {
  const where = storeChoice(v);
  if ('etcd' in where) return (await import('../../keyservice/store/etcd/store.js')).openEtcdBindingsAndAudit(where.etcd);
  return { bindings: LocalBindingStore.inStateDir(await requireDir(where.stateDir)), close: async () => {} };
}

function renderBinding(b: DiskBinding): string {
  const to = b.ekPublicSha256 === null ? 'unbound' : `ek-sha256 ${b.ekPublicSha256}`;
  return `${b.diskUuid}  ${to}  revision ${b.revision} (${b.cause}${b.nodeName ? `, node ${b.nodeName}` : ''}, ${b.time})`;
}

const list: CommandSpec<{ ok: true; bindings: DiskBinding[] }> = {
  path: ['keyservice', 'disk', 'list'],
  summary: 'list which node (EK public key SHA-256) each disk UUID is bound to',
  description: `
A disk UUID is bound to the EK of the node its key was first released to; other nodes are
refused with DISK_BOUND_ELSEWHERE. Reads STATE/disk-bindings, or with --store etcd the
replicas' bindings in etcd; safe while the service runs.`,
  options: {
    ...STORE_OPTIONS,
    disk: { type: 'string', valueName: 'UUID', description: 'only this disk' },
  },
  async run(ctx) {
    const disk = str(ctx.values, 'disk');
    if (disk !== undefined) checkUuid(disk);
    const store = await openForList(ctx.values);
    try {
      if (disk === undefined) return { ok: true, bindings: await store.bindings.list() };
      const b = await store.bindings.get(disk);
      return { ok: true, bindings: b ? [b] : [] };
    } finally {
      await store.close();
    }
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
service first (a running one makes this AUDIT_LOG_IN_USE). With --store etcd the bindings
and the audit chain are the replicas' in etcd, which take concurrent writers: the replicas
keep running and every one sees the change at its next release. The binding changes only if
nobody changed it since it was read (else DISK_BINDING_CONFLICT).`,
  options: {
    ...STORE_OPTIONS,
    disk: { type: 'string', valueName: 'UUID', description: 'the disk UUID (lowercase, as the node sends it)', required: true },
    'to-ek-sha256': { type: 'string', valueName: 'HEX', description: "the node to bind it to: SHA-256 of its EK public key (64 hex)" },
    unbind: { type: 'boolean', description: 'unbind instead: the next attested node to ask binds it' },
    reason: { type: 'string', valueName: 'TEXT', description: 'why (kept in the binding and the audit record)' },
    'audit-log': { type: 'string', valueName: 'FILE', description: "the key service's audit log (default STATE/audit.log; local store)" },
  },
  async run(ctx) {
    const disk = checkUuid(requireStr(ctx.values, 'disk'));
    const toFlag = str(ctx.values, 'to-ek-sha256');
    const unbind = bool(ctx.values, 'unbind');
    if ((toFlag === undefined) === !unbind) fail('USAGE', 'give exactly one of --to-ek-sha256 HEX and --unbind');
    const to = toFlag === undefined ? null : toFlag.toLowerCase().replace(/^sha256:/, '');
    if (to !== null && !EK_SHA256_RE.test(to)) fail('USAGE', '--to-ek-sha256 must be 64 hex digits (SHA-256 of the EK public key)');
    const reason = str(ctx.values, 'reason');
    if (reason !== undefined && reason.length > 500) fail('USAGE', '--reason is at most 500 characters');
    const store = await openForRebind(ctx.values);
    try {
      const r = await rebindAudited(store, disk, to, reason);
      ctx.log(`disk ${disk}: ${r.from ?? 'unbound'} -> ${r.to ?? 'unbound'} (revision ${r.revision}), audited in ${store.auditLocation}`);
      return { ok: true, ...r, auditLog: store.auditLocation };
    } finally {
      await store.close();
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
