import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SextantError, isSextantError, type SextantErrorCode } from '../lib/errors.js';
import { readJsonBody, sendJson } from '../lib/http-json.js';
import { ROUTES, type ErrorResponse, type NonceResponse } from '../protocol/messages.js';
import { assertChallengeRequest, assertCompleteRequest, assertConfirmRequest, assertServiceActivateRequest, assertServiceAttestRequest } from '../protocol/validate.js';
import type { ServiceSelfAttestation } from './self-attest.js';
import type { NonceStore } from './nonce-store.js';
import type { RateLimiter } from './rate-limit.js';
import type { Attestor } from './attestor.js';

/**
 * JSON over HTTPS (node:https), POST routes only. Limits come before any parsing: the rate
 * limit per client IP, then the body size (counted while reading; the connection is cut at
 * the limit). Every refusal is `{ok:false, code, message}` with the stage's error code.
 */

export interface ServerOptions {
  tlsKeyPem: string;
  tlsCertPem: string;
  nonces: NonceStore;
  attestor: Attestor;
  limiter: RateLimiter;
  maxRequestBytes: number;
  /** The service's own attestation (mutual attestation); absent: KEYSERVICE_NOT_ATTESTED. */
  selfAttestation?: ServiceSelfAttestation;
  /** Called for internal errors (never with secrets). */
  log?: (line: string) => void;
}

const STATUS: Partial<Record<SextantErrorCode, number>> = {
  PROTOCOL_INVALID: 400,
  REQUEST_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  INTERNAL: 500,
};

function statusOf(code: SextantErrorCode): number {
  return STATUS[code] ?? 403;
}

function sendError(res: ServerResponse, e: SextantError): void {
  const body: ErrorResponse = { ok: false, code: e.code, message: e.message };
  if (e.code === 'REQUEST_TOO_LARGE') res.setHeader('connection', 'close');
  sendJson(res, statusOf(e.code), body);
}

export class KeyServiceServer {
  private readonly server: Server;

  constructor(private readonly opts: ServerOptions) {
    this.server = createServer({ key: opts.tlsKeyPem, cert: opts.tlsCertPem, minVersion: 'TLSv1.3' }, (req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        opts.log?.(`internal error: ${(e as Error)?.stack ?? String(e)}`);
        if (!res.headersSent) sendError(res, new SextantError({ code: 'INTERNAL', message: 'internal error' }));
      });
    });
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const client = req.socket.remoteAddress ?? 'unknown';
    try {
      if (!this.opts.limiter.take(client)) throw new SextantError({ code: 'RATE_LIMITED', message: 'too many requests from this address' });
      if (req.method !== 'POST') throw new SextantError({ code: 'PROTOCOL_INVALID', message: 'only POST is served' });
      const body = await readJsonBody(req, this.opts.maxRequestBytes);
      switch (req.url) {
        case ROUTES.nonce: {
          const r: NonceResponse = { v: 1, nonce: this.opts.nonces.issue().toString('base64'), ttlSeconds: Math.round(this.opts.nonces.ttlMs / 1000) };
          return sendJson(res, 200, r);
        }
        case ROUTES.challenge:
          assertChallengeRequest(body);
          return sendJson(res, 200, await this.opts.attestor.challenge(body, client));
        case ROUTES.complete:
          assertCompleteRequest(body);
          return sendJson(res, 200, await this.opts.attestor.complete(body, client));
        case ROUTES.confirm:
          assertConfirmRequest(body);
          return sendJson(res, 200, await this.opts.attestor.confirm(body, client));
        case ROUTES.serviceAttest:
          assertServiceAttestRequest(body);
          return sendJson(res, 200, await this.self().attest(body));
        case ROUTES.serviceActivate:
          assertServiceActivateRequest(body);
          return sendJson(res, 200, await this.self().activate(body));
        default:
          throw new SextantError({ code: 'PROTOCOL_INVALID', message: `no route ${String(req.url)}` });
      }
    } catch (e) {
      if (isSextantError(e)) {
        // Drain nothing more from an oversized body: answer and close.
        return sendError(res, e);
      }
      throw e;
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
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}
