import { str } from '../command.js';
import { fail } from '../../lib/errors.js';
import type { KeyServiceConfig } from '../../keyservice/config.js';
import { parseEndpoints } from '../../keyservice/store/etcd/endpoints.js';

/** --etcd-endpoints and friends (shared by the server, `audit verify`/`export` and `disk list`/`rebind` on the store). */
export function etcdFlags(v: Record<string, unknown>): KeyServiceConfig['etcd'] {
  const s = (k: string) => str(v as never, k);
  const endpoints = s('etcd-endpoints');
  if (endpoints === undefined) return undefined;
  const ca = s('etcd-ca');
  if (!ca && (s('etcd-cert') || s('etcd-key'))) fail('USAGE', '--etcd-cert/--etcd-key need --etcd-ca and https:// endpoints');
  return {
    endpoints: parseEndpoints(endpoints),
    ...(s('etcd-prefix') && { prefix: s('etcd-prefix') }),
    ...(ca && { tls: { ca, ...(s('etcd-cert') && { cert: s('etcd-cert') }), ...(s('etcd-key') && { key: s('etcd-key') }) } }),
  };
}

export const ETCD_OPTIONS = {
  'etcd-endpoints': { type: 'string', valueName: 'URL[,URL...]', description: 'etcd v3 client URLs (with --store etcd)' },
  'etcd-prefix': { type: 'string', valueName: 'PREFIX', description: "this cluster's key prefix in etcd (default sextant/)" },
  'etcd-ca': { type: 'string', valueName: 'CA.pem', description: "CA of etcd's certificates (https endpoints)" },
  'etcd-cert': { type: 'string', valueName: 'PEM', description: 'client certificate for etcd (if it asks for one)' },
  'etcd-key': { type: 'string', valueName: 'PEM', description: 'its key' },
} as const;
