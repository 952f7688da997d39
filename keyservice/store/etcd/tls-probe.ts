import { isIP } from 'node:net';
import { connect } from 'node:tls';
import { SextantError } from '../../../lib/errors.js';

/**
 * One TLS handshake with each https etcd member before the client is used, so that a
 * misconfiguration fails at start with what is wrong (STORE_TLS_FAILED) instead of the gRPC
 * client's "No connection established" after its deadline, read as an outage
 * (STORE_UNAVAILABLE, "retry later"). The probe checks what the client will check, with the
 * same material: the member's certificate chains to --etcd-ca and names the endpoint's host,
 * and the member accepts our client certificate (or its absence). A member that does not
 * answer at all (refused, timed out) is not a TLS problem: it is left to the store's quorum
 * handling, so one dead member does not stop a replica from starting. Nothing is sent in
 * clear: a member that does not speak TLS is a failure, never a fallback.
 */

export interface TlsMaterial {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

type Outcome = { ok: true } | { ok: false; tls: boolean; why: string };

/** The probe's request once the handshake is done: under TLS 1.3 etcd judges our certificate only after it. */
const PROBE = 'GET /version HTTP/1.1\r\nHost: etcd\r\nConnection: close\r\n\r\n';

const CHAIN_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

function classify(e: NodeJS.ErrnoException, m: TlsMaterial, handshakeDone: boolean): Outcome {
  const code = e.code ?? '';
  // OpenSSL's alerts carry a long internal location; their code says it all.
  const text = code.startsWith('ERR_SSL_') ? code : `${code ? code + ': ' : ''}${e.message.split('\n')[0].slice(0, 160)}`;
  if (CHAIN_CODES.has(code)) return { ok: false, tls: true, why: `its certificate does not chain to --etcd-ca (${text})` };
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return { ok: false, tls: true, why: `its certificate is not valid now (${text})` };
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return { ok: false, tls: true, why: `its certificate does not name this host (${text})` };
  if (/ALERT_BAD_CERTIFICATE|ALERT_CERTIFICATE_REQUIRED|ALERT_UNKNOWN_CA|ALERT_CERTIFICATE_UNKNOWN|ALERT_UNSUPPORTED_CERTIFICATE|ALERT_ACCESS_DENIED/.test(code)) {
    return {
      ok: false,
      tls: true,
      why: m.cert
        ? `it refused our client certificate, --etcd-cert (not signed by a CA it trusts, expired, or not for client authentication) (${text})`
        : `it requires a client certificate: give --etcd-cert and --etcd-key (${text})`,
    };
  }
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT' || code === 'PROBE_TIMEOUT') return { ok: false, tls: false, why: text };
  // Reset or closed mid-handshake, "wrong version number", a packet too long: not TLS on the other side.
  if (!handshakeDone) return { ok: false, tls: true, why: `the TLS handshake did not complete: is it an http:// (plaintext) member? (${text})` };
  return { ok: false, tls: false, why: text };
}

function probeOne(endpoint: string, m: TlsMaterial, timeoutMs: number): Promise<Outcome> {
  const u = new URL(endpoint);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return new Promise<Outcome>((resolve) => {
    let handshakeDone = false;
    let settled = false;
    const done = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const socket = connect({ host, port: Number(u.port), ca: m.ca, cert: m.cert, key: m.key, ALPNProtocols: ['http/1.1'], ...(isIP(host) ? {} : { servername: host }) }, () => {
      handshakeDone = true;
      socket.write(PROBE);
    });
    const timer = setTimeout(() => done({ ok: false, tls: false, why: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.on('data', () => done({ ok: true }));
    socket.on('error', (e: NodeJS.ErrnoException) => done(classify(e, m, handshakeDone)));
    socket.on('end', () => done(handshakeDone ? { ok: true } : classify({ name: 'Error', code: 'ECONNRESET', message: 'closed before the handshake' }, m, false)));
  });
}

/** STORE_TLS_FAILED naming the first member whose TLS is wrong; members that are merely down are left alone. */
export async function probeEtcdTls(endpoints: string[], m: TlsMaterial, timeoutMs: number): Promise<void> {
  const outcomes = await Promise.all(endpoints.map((e) => probeOne(e, m, timeoutMs)));
  const i = outcomes.findIndex((o) => !o.ok && o.tls);
  if (i < 0) return;
  const o = outcomes[i] as { why: string };
  throw new SextantError({
    code: 'STORE_TLS_FAILED',
    message: `etcd member ${endpoints[i]} failed TLS: ${o.why}. nothing was sent to it in clear; fix the certificates or --etcd-ca/--etcd-cert/--etcd-key (retrying does not help)`,
  });
}
