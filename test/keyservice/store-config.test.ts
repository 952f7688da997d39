import test from 'ava';
import { resolveConfig } from '../../keyservice/config.js';

const base = { stateDir: '/s', measurements: '/m', measurementsKey: '/k', ekCa: ['/ca'] };
const endpoints = ['http://127.0.0.1:2379'];

test('store etcd: endpoints, prefix, tls and timeoutMs are taken as given', (t) => {
  // TLS options go with https:// endpoints only (keyservice/store/etcd/endpoints.ts checkEtcdTls).
  const https = ['https://127.0.0.1:2379'];
  const c = resolveConfig({ store: 'etcd', etcd: { endpoints: https, prefix: 'a/', tls: { ca: '/ca.pem', cert: '/c.pem', key: '/k.pem' }, timeoutMs: 5000 } }, base);
  t.deepEqual(c.etcd, { endpoints: https, prefix: 'a/', tls: { ca: '/ca.pem', cert: '/c.pem', key: '/k.pem' }, timeoutMs: 5000 });
  t.throws(() => resolveConfig({ store: 'etcd', etcd: { endpoints, tls: { ca: '/ca.pem' } } }, base), { code: 'USAGE' }, 'http:// with TLS options');
  t.is(resolveConfig({}, base).store, 'local');
});

test('store etcd: the etcd object is closed like the file\'s top level (a misspelt key refuses instead of being ignored), timeoutMs bounded', (t) => {
  const bad = (etcd: unknown, message: RegExp) => t.throws(() => resolveConfig({ store: 'etcd', etcd: etcd as never }, base), { code: 'CONFIG_INVALID', message }, JSON.stringify(etcd));
  bad({ endpoints, timeoutMS: 5000 }, /unknown key\(s\) timeoutMS/);
  bad({ endpoints, tls: { ca: '/ca.pem', cacert: '/x' } }, /etcd\.tls/);
  for (const timeoutMs of [0, 99, 60_001, 1.5, '2000', -1]) bad({ endpoints, timeoutMs }, /timeoutMs/);
  bad({ endpoints: ['etcd:2379'] }, /not http\(s\)/);
  t.throws(() => resolveConfig({ etcd: { endpoints } }, base), { code: 'CONFIG_INVALID', message: /store: etcd/ });
});
