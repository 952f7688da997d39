import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SextantError, isSextantError, type SextantErrorCode } from '../lib/errors.js';
import { readBody, sendJson } from '../lib/http-json.js';
import { parseJsonBounded } from '../lib/json-bounded.js';
import { ROUTES, type ErrorResponse, type NonceResponse } from '../protocol/messages.js';
import { assertChallengeRequest, assertCompleteRequest, assertConfirmRequest, assertNonceRequest, assertServiceActivateRequest, assertServiceAttestRequest } from '../protocol/validate.js';
import type { ServiceSelfAttestation } from './self-attest.js';
import type { NonceBook } from './store/store.js';
import type { RateLimiter } from './rate-limit.js';
import type { Attestor } from './attestor.js';

/**
 * JSON over HTTPS (node:https), POST routes only. Limits come before any parsing: the rate
 * limit per client IP, then the body size (counted while reading; the connection is cut at
 * the limit), then the nesting depth (lib/json-bounded.ts), then the route's closed schema
 * (protocol/validate.ts): only a request that passed all four reaches the verifier, and only
 * its validated fields can reach the audit log. Every refusal is `{ok:false, code, message}`
 * with the stage's error code; anything unexpected is a 500 INTERNAL for that request alone
 * (`answer` never throws), never the end of the process.
 */

export interface ServerOptions {
  tlsKeyPem: string;
  tlsCertPem: string;
  nonces: NonceBook;
  attestor: Attestor;
  limiter: RateLimiter;
  maxRequestBytes: number;
  /** The service's own attestation (mutual attestation); absent: KEYSERVICE_NOT_ATTESTED. */
  selfAttestation?: ServiceSelfAttestation;
  /** Called for internal errors (never with secrets). */
  log?: (line: string) => void;
}

/** What a route answers: an HTTP status and a JSON body. */
export interface Answer {
  status: number;
  body: unknown;
}

const STATUS: Partial<Record<SextantErrorCode, number>> = {
  PROTOCOL_INVALID: 400,
  REQUEST_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  AUDIT_UNAVAILABLE: 503,
  STORE_UNAVAILABLE: 503,
};

export function errorAnswer(e: SextantError): Answer {
  const body: ErrorResponse = { ok: false, code: e.code, message: e.message };
  return { status: STATUS[e.code] ?? 403, body };
}

function send(res: ServerResponse, a: Answer): void {
  if (res.headersSent || res.destroyed) return;
  if (a.status === 413) res.setHeader('connection', 'close');
  sendJson(res, a.status, a.body);
}

export class KeyServiceServer {
  private readonly server: Server;
  private readonly routes: Record<string, (body: unknown, client: string) => Promise<unknown>>;

  constructor(private readonly opts: ServerOptions) {
    this.routes = {
      [ROUTES.nonce]: async (b) => {
        assertNonceRequest(b);
        const r: NonceResponse = { v: 1, nonce: (await this.opts.nonces.issue()).toString('base64'), ttlSeconds: Math.round(this.opts.nonces.ttlMs / 1000) };
        return r;
      },
      [ROUTES.challenge]: async (b, client) => {
        assertChallengeRequest(b);
        return this.opts.attestor.challenge(b, client);
      },
      [ROUTES.complete]: async (b, client) => {
        assertCompleteRequest(b);
        return this.opts.attestor.complete(b, client);
      },
      [ROUTES.confirm]: async (b, client) => {
        assertConfirmRequest(b);
        return this.opts.attestor.confirm(b, client);
      },
      [ROUTES.serviceAttest]: async (b) => {
        assertServiceAttestRequest(b);
        return this.self().attest(b);
      },
      [ROUTES.serviceActivate]: async (b) => {
        assertServiceActivateRequest(b);
        return this.self().activate(b);
      },
    };
    this.server = createServer({ key: opts.tlsKeyPem, cert: opts.tlsCertPem, minVersion: 'TLSv1.3' }, (req, res) => {
      void this.handle(req, res);
    });
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    // An agent keeps one connection for both rounds; between them its TPM activates the
    // credential and quotes (seconds on a slow TPM), longer than Node's 5 s default.
    this.server.keepAliveTimeout = 30_000;
  }

  /**
   * One request body for one route, after the HTTP layer: parse (bounded), validate, answer.
   * Never throws and never rejects: a SextantError is its typed refusal, anything else a 500.
   */
  async answer(route: string, body: Buffer | string, client: string): Promise<Answer> {
    try {
      const handler = Object.hasOwn(this.routes, route) ? this.routes[route] : undefined;
      if (!handler) throw new SextantError({ code: 'PROTOCOL_INVALID', message: `no route ${route.slice(0, 64)}` });
      const parsed = parseJsonBounded(typeof body === 'string' ? body : body.toString('utf8'));
      return { status: 200, body: await handler(parsed, client) };
    } catch (e) {
      return this.refusal(e);
    }
  }

  private refusal(e: unknown): Answer {
    if (isSextantError(e)) return errorAnswer(e);
    this.opts.log?.(`internal error: ${(e as Error)?.stack ?? String(e)}`);
    return errorAnswer(new SextantError({ code: 'INTERNAL', message: 'internal error' }));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const client = req.socket.remoteAddress ?? 'unknown';
    let a: Answer;
    try {
      if (!this.opts.limiter.take(client)) throw new SextantError({ code: 'RATE_LIMITED', message: 'too many requests from this address' });
      if (req.method !== 'POST') throw new SextantError({ code: 'PROTOCOL_INVALID', message: 'only POST is served' });
      // An oversized body is not drained: the answer goes out and the connection closes.
      const body = await readBody(req, this.opts.maxRequestBytes);
      a = await this.answer(String(req.url), body, client);
    } catch (e) {
      // A client that hung up mid-body is nobody to answer.
      if (req.destroyed && !isSextantError(e)) return;
      a = this.refusal(e);
    }
    try {
      send(res, a);
    } catch (e) {
      this.opts.log?.(`cannot answer ${client}: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  private self(): ServiceSelfAttestation {
    if (!this.opts.selfAttestation) throw new SextantError({ code: 'KEYSERVICE_NOT_ATTESTED', message: 'this key service does not attest itself (start it with --tpm-tcti)' });
    return this.opts.selfAttestation;
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    // After listening, a server error (e.g. EMFILE on accept) is logged, not thrown at the process.
    this.server.on('error', (e) => this.opts.log?.(`server error: ${e.message}`));
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}
