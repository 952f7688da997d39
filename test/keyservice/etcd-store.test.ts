/**
 * What the etcd store reads back from etcd, on a real one-member etcd: values it did not
 * write are refused, never taken on trust or thrown as a SyntaxError.
 *
 * The audit chain's head (audit/head) as the replicas' writer and `audit verify|export
 * --store etcd` read it: one check (audit/scan.ts parseAuditHead) for both and for the file
 * log's head, so a head that is not {count >= 0, last} is AUDIT_LOG_BROKEN everywhere (it was
 * a SyntaxError for the reader and a 503 for the writer, and a negative count was taken as
 * the head to chain after). A nonce key whose value is not {exp} is NONCE_UNKNOWN.
 */
import anyTest, { type TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { parseAuditHead } from '../../keyservice/audit/scan.js';
import { HEAD_KEY, EtcdAuditLog } from '../../keyservice/store/etcd/audit.js';
import { readEtcdAuditLog } from '../../keyservice/store/etcd/audit-read.js';
import { connectEtcd } from '../../keyservice/store/etcd/client.js';
import { LeaseBuckets } from '../../keyservice/store/etcd/leases.js';
import { EtcdNonceBook } from '../../keyservice/store/etcd/nonces.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';

const test = anyTest as TestFn<{ etcd: EtcdCluster }>;

test.before(async (t) => {
  t.context.etcd = await startEtcdCluster(1);
});
test.after.always(async (t) => {
  await t.context.etcd?.stop();
});

const BAD_HEADS = ['not json', 'null', '[]', '{"count":-1,"last":"00"}', '{"count":1.5,"last":"00"}', '{"count":"1","last":"00"}', '{"count":1}'];

test('a head that is not {count >= 0, last} is AUDIT_LOG_BROKEN, naming where it was read', (t) => {
  t.deepEqual(parseAuditHead('{"count":2,"last":"ab","extra":1}', 'x'), { count: 2, last: 'ab' });
  for (const h of BAD_HEADS) t.throws(() => parseAuditHead(h, 'etcd audit/head'), { code: 'AUDIT_LOG_BROKEN', message: /^etcd audit\/head is not \{count, last\}/ } as never, h);
});

test('etcd: the writer and the reader refuse a broken audit/head alike; a good chain still reads and verifies', async (t) => {
  const { client, ns } = await connectEtcd({ endpoints: t.context.etcd.endpoints, prefix: 'audit-test/' });
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
  }
});

test('etcd nonces: issued once, then replayed; a nonce key holding anything but {exp} is NONCE_UNKNOWN (junk threw, {} passed as fresh)', async (t) => {
  const { client, ns } = await connectEtcd({ endpoints: t.context.etcd.endpoints, prefix: 'nonce-test/' });
  try {
    const book = new EtcdNonceBook(ns, new LeaseBuckets(ns, Date.now), Date.now, 60_000);
    const n = await book.issue();
    t.is(await book.take(n), undefined);
    t.is((await book.take(n))?.code, 'NONCE_REPLAYED');
    t.is((await book.take(randomBytes(32)))?.code, 'NONCE_UNKNOWN');
    for (const v of ['junk', '{}', 'null', '{"exp":"later"}']) {
      const forged = randomBytes(32);
      await ns.put('nonce/' + forged.toString('hex')).value(v).exec();
      t.is((await book.take(forged))?.code, 'NONCE_UNKNOWN', v);
    }
  } finally {
    client.close();
  }
});
