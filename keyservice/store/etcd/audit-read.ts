import type { Namespace } from 'etcd3';
import type { AuditHead } from '../../audit/record.js';
import { parseAuditHead } from '../../audit/scan.js';
import { HEAD_KEY } from './audit.js';
import { guard } from './client.js';

/**
 * The etcd audit chain as the bytes of an audit log file (one line per record) and its head,
 * read at one etcd revision so that replicas appending meanwhile do not tear the view. Pages
 * of 500 records keep each response far under etcd's message limits.
 */
export async function readEtcdAuditLog(ns: Namespace): Promise<{ bytes: Buffer; head: AuditHead | undefined; revision: string }> {
  const first = await guard('read the audit head', () => ns.get(HEAD_KEY).exec());
  const revision = first.header.revision;
  const head = first.kvs[0] ? parseAuditHead(first.kvs[0].value.toString('utf8'), 'etcd audit/head') : undefined;
  const lines: Buffer[] = [];
  // Record keys are 'audit/rec/' + 12 digits: '0' (after '/') starts them, ':' (after '9') ends them.
  let start = 'audit/rec/';
  for (;;) {
    const page = await guard('read the audit log', () => ns.getAll().inRange({ start, end: 'audit/rec:' }).revision(revision).sort('Key', 'Ascend').limit(500).exec());
    lines.push(...page.kvs.map((kv) => Buffer.concat([kv.value, Buffer.from('\n')])));
    if (!page.more || page.kvs.length === 0) break;
    start = page.kvs.at(-1)!.key.toString('utf8') + '\0';
  }
  return { bytes: Buffer.concat(lines), head, revision };
}
