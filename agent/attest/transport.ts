import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { hash, toHex } from '../../lib/bytes.js';
import { FAILURE_ERROR_CODES, INPUT_ERROR_CODES, SextantError, type SextantErrorCode } from '../../lib/errors.js';

/**
 * POSTs JSON to the key service over TLS, pinned to one certificate: the key service's
 * certificate is self-signed, so instead of a CA the agent checks the SHA-256 of the DER
 * certificate the server presents *before* sending any byte of the request.
 */

export interface PinnedEndpoint {
  /** https://host:port */
  url: string;
  /** `sha256:<hex>` of the DER certificate. */
  fingerprint: string;
  timeoutMs?: number;
  /** Who is at the other end, for messages (default "key service"; `sextant recover` says "node"). */
  peer?: string;
  /** A TLS client identity to present (`sextant recover`: the node's recovery endpoint requires a pinned one). */
  client?: { keyPem: string; certPem: string };
}

const KNOWN_CODES: ReadonlySet<string> = new Set([...INPUT_ERROR_CODES, ...FAILURE_ERROR_CODES]);

/** Codes that a retry cannot change (the service decided), as opposed to transport trouble or a service that cannot record decisions right now. */
export function isFinalRefusal(e: unknown): boolean {
  return e instanceof SextantError && !['KEYSERVICE_UNREACHABLE', 'RATE_LIMITED', 'TIMEOUT', 'INTERNAL', 'AUDIT_UNAVAILABLE'].includes(e.code);
}

export function normalizeFingerprint(f: string): string {
  const m = /^sha256:([0-9a-fA-F:]{64,95})$/.exec(f.trim());
  const hex = m?.[1].replace(/:/g, '').toLowerCase();
  if (!hex || hex.length !== 64) throw new SextantError({ code: 'INVALID_ARGUMENT', message: `fingerprint must be sha256:<64 hex digits>, got "${f}"` });
  return 'sha256:' + hex;
}

export function postJson(ep: PinnedEndpoint, route: string, body: unknown): Promise<unknown> {
  const want = normalizeFingerprint(ep.fingerprint);
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  const url = new URL(route, ep.url);
  if (url.protocol !== 'https:') throw new SextantError({ code: 'INVALID_ARGUMENT', message: `key service URL must be https://, got ${ep.url}` });
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      agent: false,
      rejectUnauthorized: false, // replaced by the fingerprint pin below
      ...(ep.client ? { key: ep.client.keyPem, cert: ep.client.certPem } : {}),
      headers: { 'content-type': 'application/json', 'content-length': payload.length },
      timeout: ep.timeoutMs ?? 15_000,
    });
    let settled = false;
    const fail = (e: SextantError): void => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(e);
    };
    req.on('socket', (s) => {
      (s as TLSSocket).once('secureConnect', () => {
        const cert = (s as TLSSocket).getPeerCertificate();
        const got = cert?.raw ? 'sha256:' + toHex(hash('sha256', cert.raw)) : '(no certificate)';
        if (got !== want) {
          return fail(new SextantError({ code: 'TLS_FINGERPRINT_MISMATCH', message: `${ep.peer ?? 'key service'} presented certificate ${got}, pinned ${want}` }));
        }
        req.end(payload);
      });
    });
    req.on('timeout', () => fail(new SextantError({ code: 'KEYSERVICE_UNREACHABLE', message: `no answer from ${url.origin} within ${ep.timeoutMs ?? 15_000} ms` })));
    req.on('error', (cause) => fail(new SextantError({ code: 'KEYSERVICE_UNREACHABLE', message: `cannot reach ${url.origin}: ${cause.message}`, cause })));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > 1024 * 1024) fail(new SextantError({ code: 'PROTOCOL_INVALID', message: 'answer over 1 MiB' }));
        else chunks.push(c);
      });
      res.on('error', (cause) => fail(new SextantError({ code: 'KEYSERVICE_UNREACHABLE', message: `answer cut off: ${cause.message}`, cause })));
      res.on('end', () => {
        if (settled) return;
        let parsed: unknown;
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return fail(new SextantError({ code: 'PROTOCOL_INVALID', message: `${ep.peer ?? 'key service'} answered HTTP ${res.statusCode} with non-JSON` }));
        }
        if (res.statusCode !== 200) {
          const p = parsed as { code?: unknown; message?: unknown };
          const code = typeof p.code === 'string' && KNOWN_CODES.has(p.code) ? (p.code as SextantErrorCode) : 'KEYSERVICE_REFUSED';
          return fail(new SextantError({ code, message: `${ep.peer ?? 'key service'} refused: ${typeof p.message === 'string' ? p.message : `HTTP ${res.statusCode}`}` }));
        }
        settled = true;
        resolve(parsed);
      });
    });
  });
}
