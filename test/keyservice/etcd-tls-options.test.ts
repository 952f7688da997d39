/**
 * checkEtcdTls, the one check of the etcd endpoints' scheme against the TLS options (flags,
 * --config, the admin commands): fuzzed over endpoint lists and option sets, it accepts
 * exactly "all https with a CA (client certificate and key together or neither)" and "all
 * http without TLS options", and refuses everything else with USAGE (never another error).
 */
import test from 'ava';
import fc from 'fast-check';
import { checkEtcdTls, type EtcdStoreConfig } from '../../keyservice/store/etcd/endpoints.js';
import { SextantError } from '../../lib/errors.js';

const endpoint = fc.tuple(fc.constantFrom('http', 'https'), fc.integer({ min: 1, max: 65535 })).map(([s, p]) => `${s}://127.0.0.1:${p}`);
const tls = fc.option(fc.record({ ca: fc.option(fc.constant('ca.pem'), { nil: undefined }), cert: fc.option(fc.constant('c.pem'), { nil: undefined }), key: fc.option(fc.constant('k.pem'), { nil: undefined }) }), { nil: undefined });

test('accepts exactly the coherent combinations; USAGE for every other', (t) => {
  fc.assert(
    fc.property(fc.array(endpoint, { minLength: 1, maxLength: 5 }), tls, (endpoints, o) => {
      const https = endpoints.every((e) => e.startsWith('https:'));
      const http = endpoints.every((e) => e.startsWith('http:'));
      const ok = (http && o === undefined) || (https && o?.ca !== undefined && (o.cert === undefined) === (o.key === undefined));
      let err: unknown;
      try {
        checkEtcdTls({ endpoints, tls: o as EtcdStoreConfig['tls'] });
      } catch (e) {
        err = e;
      }
      if (ok) return err === undefined;
      return err instanceof SextantError && err.code === 'USAGE';
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('an http:// endpoint with TLS options names the fix', (t) => {
  const e = t.throws(() => checkEtcdTls({ endpoints: ['http://127.0.0.1:2379'], tls: { ca: 'ca.pem' } }));
  t.regex(e!.message, /must then be https/);
});
