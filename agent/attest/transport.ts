import { Agent, request } from 'node:https';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { hash, toHex } from '../../lib/bytes.js';
import { FAILURE_ERROR_CODES, INPUT_ERROR_CODES, SextantError, type SextantErrorCode } from '../../lib/errors.js';

/**
 * POSTs JSON to the key service over TLS, pinned to one certificate: the key service's
 * certificate is self-signed, so instead of a CA the agent checks the SHA-256 of the DER
 * certificate the server presents *before* sending any byte of the request.
 *
 * A PinnedClient keeps one connection alive for all the requests of an attestation (both
 * rounds: one TLS handshake instead of one per request) and resumes TLS sessions across
 * attestations. The pin holds on a resumed session too: a resumed handshake carries no
 * certificate, so a session is only ever offered again under the pin its full handshake
 * matched (TlsSessionCache is keyed by origin and pin), and the server can only resume it
 * by holding that session's ticket key. A session from another pin is never offered, so a
 * client pinned to a new key does a full handshake and checks that key's certificate.
 */

export interface PinnedEndpoint {
  /** https://host:port */
  url: string;
  /** `sha256:<hex>` of the DER certificate. */
  fingerprint: string;
  /** The whole request, from connecting to the answer's last byte (default 15 s); a peer that trickles cannot stretch it. */
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

/** TLS sessions that may be resumed, by origin + pin; bounded, oldest out first. */
export class TlsSessionCache {
  private readonly sessions = new Map<string, Buffer>();

  constructor(private readonly max = 64) {}

  get(key: string): Buffer | undefined {
    return this.sessions.get(key);
  }

  set(key: string, session: Buffer): void {
    this.sessions.delete(key);
    if (this.sessions.size >= this.max) this.sessions.delete(this.sessions.keys().next().value!);
    this.sessions.set(key, session);
  }
}

/** The process's cache: an agent's later attestations (retries, the confirm round) resume its earlier sessions. */
export const processSessions = new TlsSessionCache();

interface SocketState {
  /** The pin check passed on this connection: requests may go out on it. */
  verified: boolean;
  /** The connection was opened offering a session cached under this pin. */
  offered: boolean;
  /** A session ticket that arrived before the check passed (kept only once it passes). */
  pending?: Buffer;
}

/** One kept-alive, pinned connection (reopened, resuming, when the server closed it). */
class PinnedAgent extends Agent {
  readonly state = new WeakMap<Duplex, SocketState>();

  constructor(
    /** Absent: no resumption (a client identity: the server checks its certificate per request, and a resumed session carries none). */
    private readonly sessions: TlsSessionCache | undefined,
    private readonly key: string,
  ) {
    super({ keepAlive: true, maxSockets: 1 });
  }

  override createConnection(options: ConnectionOptions): Duplex {
    const session = this.sessions?.get(this.key);
    const s = connect({ ...options, session });
    const st: SocketState = { verified: false, offered: session !== undefined };
    this.state.set(s, st);
    s.on('session', (ticket: Buffer) => {
      if (st.verified) this.sessions?.set(this.key, ticket);
      else st.pending = ticket;
    });
    return s;
  }

  /** Marks the connection checked and keeps the session ticket it got. */
  verified(s: Duplex): void {
    const st = this.state.get(s)!;
    st.verified = true;
    if (st.pending) this.sessions?.set(this.key, st.pending);
    st.pending = undefined;
  }
}

export class PinnedClient {
  private readonly want: string;
  private readonly agent: PinnedAgent;
  private readonly origin: string;

  constructor(
    private readonly ep: PinnedEndpoint,
    sessions: TlsSessionCache = processSessions,
  ) {
    this.want = normalizeFingerprint(ep.fingerprint);
    const url = new URL(ep.url);
    if (url.protocol !== 'https:') throw new SextantError({ code: 'INVALID_ARGUMENT', message: `key service URL must be https://, got ${ep.url}` });
    this.origin = url.origin;
    this.agent = new PinnedAgent(ep.client ? undefined : sessions, `${this.origin} ${this.want}`);
  }

  private get peer(): string {
    return this.ep.peer ?? 'key service';
  }

  /**
   * A fresh connection passes when it resumed a session offered under this pin, or when its
   * certificate has the pinned SHA-256. Anything else is TLS_FINGERPRINT_MISMATCH.
   */
  private checkPin(s: TLSSocket): void {
    const st = this.agent.state.get(s);
    if (st?.offered && s.isSessionReused()) return;
    const cert = s.getPeerCertificate();
    const got = cert?.raw ? 'sha256:' + toHex(hash('sha256', cert.raw)) : '(no certificate)';
    if (got !== this.want) throw new SextantError({ code: 'TLS_FINGERPRINT_MISMATCH', message: `${this.peer} presented certificate ${got}, pinned ${this.want}` });
  }

  post(route: string, body: unknown): Promise<unknown> {
    const payload = Buffer.from(JSON.stringify(body), 'utf8');
    const url = new URL(route, this.origin);
    const timeoutMs = this.ep.timeoutMs ?? 15_000;
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method: 'POST',
        agent: this.agent,
        rejectUnauthorized: false, // replaced by the fingerprint pin below
        ...(this.ep.client ? { key: this.ep.client.keyPem, cert: this.ep.client.certPem } : {}),
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
      });
      let settled = false;
      const fail = (e: SextantError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        req.destroy();
        reject(e);
      };
      const deadline = setTimeout(() => fail(new SextantError({ code: 'KEYSERVICE_UNREACHABLE', message: `no answer from ${url.origin} within ${timeoutMs} ms` })), timeoutMs);
      req.on('socket', (socket) => {
        const s = socket as TLSSocket;
        // A kept-alive connection was checked when it was opened.
        if (this.agent.state.get(s)?.verified) return void req.end(payload);
        s.once('secureConnect', () => {
          try {
            this.checkPin(s);
          } catch (e) {
            return fail(e as SextantError);
          }
          this.agent.verified(s);
          req.end(payload);
        });
      });
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
            return fail(new SextantError({ code: 'PROTOCOL_INVALID', message: `${this.peer} answered HTTP ${res.statusCode} with non-JSON` }));
          }
          if (res.statusCode !== 200) {
            const p = parsed as { code?: unknown; message?: unknown };
            const code = typeof p.code === 'string' && KNOWN_CODES.has(p.code) ? (p.code as SextantErrorCode) : 'KEYSERVICE_REFUSED';
            return fail(new SextantError({ code, message: `${this.peer} refused: ${typeof p.message === 'string' ? p.message : `HTTP ${res.statusCode}`}` }));
          }
          settled = true;
          clearTimeout(deadline);
          resolve(parsed);
        });
      });
    });
  }

  /** Closes the kept-alive connection. */
  close(): void {
    this.agent.destroy();
  }
}

/** One request on its own connection (resuming a cached session when there is one). */
export async function postJson(ep: PinnedEndpoint, route: string, body: unknown): Promise<unknown> {
  const c = new PinnedClient(ep);
  try {
    return await c.post(route, body);
  } finally {
    c.close();
  }
}
