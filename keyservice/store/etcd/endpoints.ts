import { SextantError } from '../../../lib/errors.js';

/** The etcd store's settings, and endpoint parsing: no etcd client loaded (config and CLI read these). */

export interface EtcdStoreConfig {
  endpoints: string[];
  /** Key prefix of this key service's cluster (default `sextant/`). */
  prefix?: string;
  /** Client TLS: the CA that signed etcd's certificate, and a client certificate if etcd asks for one. */
  tls?: { ca: string; cert?: string; key?: string };
  /** Per-call deadline (default 2000 ms). */
  timeoutMs?: number;
}

export const ENDPOINT_RE = /^https?:\/\/(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

export function parseEndpoints(list: string): string[] {
  const eps = list.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = eps.filter((e) => !ENDPOINT_RE.test(e));
  if (eps.length === 0 || bad.length) throw new SextantError({ code: 'USAGE', message: `--etcd-endpoints must be http(s)://HOST:PORT[,...]${bad.length ? `, got "${bad[0]}"` : ''}` });
  return eps;
}
