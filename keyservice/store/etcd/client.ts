import { readFile } from 'node:fs/promises';
import { Etcd3, type Namespace } from 'etcd3';
import { SextantError } from '../../../lib/errors.js';
import { checkEtcdTls, type EtcdStoreConfig } from './endpoints.js';
import { probeEtcdTls } from './tls-probe.js';

export type { EtcdStoreConfig } from './endpoints.js';

/**
 * The etcd v3 connection (the maintained `etcd3` client: gRPC, load-balanced over the
 * endpoints, per-host circuit breaker, retries on another member). Every call has a deadline:
 * without quorum etcd cannot answer, and a replica must then refuse (STORE_UNAVAILABLE) within
 * the agent's patience instead of hanging: `guard` turns any client failure into that code.
 */

export async function connectEtcd(c: EtcdStoreConfig): Promise<{ client: Etcd3; ns: Namespace }> {
  const timeoutMs = c.timeoutMs ?? 2000;
  const read = async (f: string) => {
    try {
      return await readFile(f);
    } catch (cause) {
      throw new SextantError({ code: 'FILE_NOT_FOUND', message: `cannot read ${f}`, cause });
    }
  };
  checkEtcdTls(c);
  const credentials = c.tls ? { rootCertificate: await read(c.tls.ca), ...(c.tls.cert && { certChain: await read(c.tls.cert) }), ...(c.tls.key && { privateKey: await read(c.tls.key) }) } : undefined;
  if (credentials) await probeEtcdTls(c.endpoints, { ca: credentials.rootCertificate, cert: credentials.certChain, key: credentials.privateKey }, timeoutMs);
  const client = new Etcd3({
    hosts: c.endpoints,
    credentials,
    dialTimeout: timeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
  });
  return { client, ns: client.namespace(c.prefix ?? 'sextant/') };
}

/** Runs one store call; any failure of the client is STORE_UNAVAILABLE (nothing decided on it). */
export async function guard<T>(what: string, p: Promise<T> | (() => Promise<T>)): Promise<T> {
  try {
    return await (typeof p === 'function' ? p() : p);
  } catch (cause) {
    if (cause instanceof SextantError) throw cause;
    throw new SextantError({
      code: 'STORE_UNAVAILABLE',
      message: `the key service's store (etcd) cannot ${what} (${(cause as Error)?.message?.split('\n')[0]?.slice(0, 200) ?? String(cause)}): nothing is released; retry later or at another replica`,
      cause,
    });
  }
}
