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

/**
 * The endpoints' scheme and the TLS options must agree, for every way the settings arrive
 * (flags, --config): https endpoints need the CA (etcd's certificate is checked against it,
 * never against nothing), TLS options need https endpoints (an http:// endpoint with them
 * would be dialled with TLS anyway by the client: the URL would lie), one scheme for all
 * members, a client certificate with its key. USAGE otherwise.
 */
export function checkEtcdTls(c: Pick<EtcdStoreConfig, 'endpoints' | 'tls'>): void {
  const usage = (message: string): never => {
    throw new SextantError({ code: 'USAGE', message });
  };
  const https = c.endpoints.filter((e) => e.startsWith('https:')).length;
  if (https > 0 && https < c.endpoints.length) usage(`--etcd-endpoints mixes http:// and https:// members (${c.endpoints.join(',')}): all of them or none use TLS`);
  if (https === 0 && c.tls) usage('--etcd-ca/--etcd-cert/--etcd-key are TLS options: the etcd endpoints must then be https:// (an http:// endpoint with them is refused rather than half-trusted)');
  if (https > 0 && !c.tls?.ca) usage("https etcd endpoints need --etcd-ca (the CA that signed the members' certificates)");
  if (c.tls && (c.tls.cert === undefined) !== (c.tls.key === undefined)) usage('--etcd-cert and --etcd-key go together (the client certificate and its key)');
}
