import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SextantError, isSextantError, type SextantErrorCode } from './errors.js';
import { readBody, sendJson } from './http-json.js';
import { parseJsonBounded } from './json-bounded.js';
import type { RateLimiter } from './rate-limit.js';

/**
 * The JSON-over-HTTPS server both of sextant's servers are (the key service and the node's
 * recovery endpoint): TLS 1.3, POST routes only, and limits before any parsing, in this order:
 * the per-address rate limit, the caller's admission check (the recovery endpoint's client
 * pin), the method, the body size (counted while reading; an oversized body is not drained:
 * the answer goes out and the connection closes), the nesting depth (lib/json-bounded.ts),
 * then the route, which validates its closed schema. Every refusal is `{ok:false, code,
 * message}`; anything unexpected is a 500 INTERNAL for that request alone (logged, never the
 * end of the process): `answer` never throws.
 */

/** What a route answers: an HTTP status and a JSON body. */
export interface Answer {
  status: number;
  body: unknown;
}

export interface RequestContext {
  /** The peer's address (the rate limit's key). */
  client: string;
  /** What `admit` returned (the recovery endpoint: the client pin the TLS certificate matched). */
  identity: string;
  /** Runs `f` once the answer has been written (the recovery endpoint closes itself after a release). */
  afterAnswer(f: () => void): void;
}

export type Route = (body: unknown, ctx: RequestContext) => Promise<unknown>;

export interface HttpsJsonServerOptions {
  tls: { keyPem: string; certPem: string; requestCert?: boolean };
  routes: Record<string, Route>;
  limiter: Pick<RateLimiter, 'take'>;
  maxRequestBytes: number;
  /** Before the body is read: throws a refusal, or returns who is asking. */
  admit?: (req: IncomingMessage) => string;
  /** HTTP status per refusal code beyond the shared ones (default 403). */
  status?: Partial<Record<SextantErrorCode, number>>;
  /** Connections the kernel queues before they are accepted (default 511; capped by net.core.somaxconn). */
  backlog?: number;
  /** How long an idle kept-alive connection stays open (an agent's two rounds share one). */
  keepAliveTimeoutMs?: number;
  /** Internal errors (never with secrets). */
  log?: (line: string) => void;
  /** Each refusal, for a log line. */
  onRefusal?: (client: string, e: SextantError) => void;
}

const STATUS: Partial<Record<SextantErrorCode, number>> = {
  PROTOCOL_INVALID: 400,
  RECOVERY_UNAUTHORIZED: 401,
  REQUEST_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  AUDIT_UNAVAILABLE: 503,
  STORE_UNAVAILABLE: 503,
};

export function errorAnswer(e: SextantError, status: Partial<Record<SextantErrorCode, number>> = {}): Answer {
  return { status: status[e.code] ?? STATUS[e.code] ?? 403, body: { ok: false, code: e.code, message: e.message } };
}

export class HttpsJsonServer {
  /** The node:https server (to close connections by hand). */
  readonly server: Server;

  constructor(private readonly o: HttpsJsonServerOptions) {
    // requestCert without a CA: the handshake asks for a client certificate and OpenSSL checks
    // the client holds its key (CertificateVerify); which certificates count is `admit`'s call.
    this.server = createServer(
      { key: o.tls.keyPem, cert: o.tls.certPem, minVersion: 'TLSv1.3', ...(o.tls.requestCert && { requestCert: true, rejectUnauthorized: false }) },
      (req, res) => void this.handle(req, res),
    );
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    if (o.keepAliveTimeoutMs !== undefined) this.server.keepAliveTimeout = o.keepAliveTimeoutMs;
  }

  /**
   * One request body for one route, after the HTTP layer: parse (bounded), then the route.
   * Never throws and never rejects: a SextantError is its typed refusal, anything else a 500.
   */
  async answer(route: string, body: Buffer | string, ctx: RequestContext): Promise<Answer> {
    try {
      const handler = Object.hasOwn(this.o.routes, route) ? this.o.routes[route] : undefined;
      if (!handler) throw new SextantError({ code: 'PROTOCOL_INVALID', message: `no route ${route.slice(0, 64)}` });
      const parsed = parseJsonBounded(typeof body === 'string' ? body : body.toString('utf8'));
      return { status: 200, body: await handler(parsed, ctx) };
    } catch (e) {
      return this.refusal(ctx.client, e);
    }
  }

  private refusal(client: string, e: unknown): Answer {
    if (isSextantError(e)) {
      this.o.onRefusal?.(client, e);
      return errorAnswer(e, this.o.status);
    }
    this.o.log?.(`internal error: ${(e as Error)?.stack ?? String(e)}`);
    return errorAnswer(new SextantError({ code: 'INTERNAL', message: 'internal error' }));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const client = req.socket.remoteAddress ?? 'unknown';
    const after: (() => void)[] = [];
    let a: Answer;
    try {
      if (!this.o.limiter.take(client)) throw new SextantError({ code: 'RATE_LIMITED', message: 'too many requests from this address' });
      const identity = this.o.admit?.(req) ?? client;
      if (req.method !== 'POST') throw new SextantError({ code: 'PROTOCOL_INVALID', message: 'only POST is served' });
      const body = await readBody(req, this.o.maxRequestBytes);
      a = await this.answer(String(req.url), body, { client, identity, afterAnswer: (f) => void after.push(f) });
    } catch (e) {
      // A client that hung up mid-body is nobody to answer.
      if (req.destroyed && !isSextantError(e)) return;
      a = this.refusal(client, e);
    }
    try {
      if (res.headersSent || res.destroyed) return;
      if (a.status === 413) res.setHeader('connection', 'close');
      sendJson(res, a.status, a.body);
      for (const f of after) f();
    } catch (e) {
      this.o.log?.(`cannot answer ${client}: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  /** Listens; a failure to listen rejects, a later server error (EMFILE on accept) is logged. */
  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host, backlog: this.o.backlog ?? 511 }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.server.on('error', (e) => this.o.log?.(`server error: ${e.message}`));
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}

/** The TLS socket under a request (for client-certificate checks in `admit`). */
export function tlsSocketOf(req: IncomingMessage): TLSSocket {
  return req.socket as TLSSocket;
}
