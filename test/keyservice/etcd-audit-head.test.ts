/**
 * The etcd audit chain's head (audit/head) as the replicas' writer and `audit verify|export
 * --store etcd` read it, on a real one-member etcd: one check (audit/scan.ts parseAuditHead)
 * for both and for the file log's head, so a head that is not {count >= 0, last} is
 * AUDIT_LOG_BROKEN everywhere (it was a SyntaxError for the reader and a 503 for the writer,
 * and a negative count was taken as the head to chain after).
 */
import test from 'ava';
import { parseAuditHead } from '../../keyservice/audit/scan.js';
import { HEAD_KEY, EtcdAuditLog } from '../../keyservice/store/etcd/audit.js';
import { readEtcdAuditLog } from '../../keyservice/store/etcd/audit-read.js';
import { connectEtcd } from '../../keyservice/store/etcd/client.js';
import { startEtcdCluster } from '../helpers/etcd-cluster.js';

const BAD_HEADS = ['not json', 'null', '[]', '{"count":-1,"last":"00"}', '{"count":1.5,"last":"00"}', '{"count":"1","last":"00"}', '{"count":1}'];

test('a head that is not {count >= 0, last} is AUDIT_LOG_BROKEN, naming where it was read', (t) => {
  t.deepEqual(parseAuditHead('{"count":2,"last":"ab","extra":1}', 'x'), { count: 2, last: 'ab' });
  for (const h of BAD_HEADS) t.throws(() => parseAuditHead(h, 'etcd audit/head'), { code: 'AUDIT_LOG_BROKEN', message: /^etcd audit\/head is not \{count, last\}/ } as never, h);
});

test('etcd: the writer and the reader refuse a broken audit/head alike; a good chain still reads and verifies', async (t) => {
  const etcd = await startEtcdCluster(1);
  const { client, ns } = await connectEtcd({ endpoints: etcd.endpoints, prefix: 'sextant-test/' });
  try {
    const log = await new EtcdAuditLog(ns).open();
    await log.append({ decision: 'start' });
    await log.close();
    const good = await readEtcdAuditLog(ns);
    t.is(good.head?.count, 1);
    t.is(good.bytes.toString('utf8').split('\n').length, 2);
    for (const h of BAD_HEADS) {
      await ns.put(HEAD_KEY).value(h).exec();
      await t.throwsAsync(readEtcdAuditLog(ns), { code: 'AUDIT_LOG_BROKEN' } as never, `reader, head ${h}`);
      await t.throwsAsync(new EtcdAuditLog(ns).open(), { code: 'AUDIT_LOG_BROKEN' } as never, `writer, head ${h}`);
    }
  } finally {
    client.close();
    await etcd.stop();
  }
});
