import type { AddressInfo } from 'node:net';
import { SextantError } from '../lib/errors.js';
import { HttpsJsonServer, type Answer, type Route } from '../lib/https-json-server.js';
import { ROUTES, type NonceResponse } from '../protocol/messages.js';
import { assertChallengeRequest, assertCompleteRequest, assertConfirmRequest, assertNonceRequest, assertServiceActivateRequest, assertServiceAttestRequest } from '../protocol/validate.js';
import type { ServiceSelfAttestation } from './self-attest.js';
import type { NonceBook } from './store/store.js';
import type { RateLimiter } from './rate-limit.js';
import type { Attestor } from './attestor.js';

export { errorAnswer, type Answer } from '../lib/https-json-server.js';

/**
 * The key service's routes on lib/https-json-server.ts (rate limit, body size, nesting depth
 * before any parsing), each validating its closed schema (protocol/validate.ts): only a
 * request that passed all four reaches the verifier, and only its validated fields can reach
 * the audit log. Every refusal is `{ok:false, code, message}` with the stage's error code.
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

export class KeyServiceServer {
  private readonly http: HttpsJsonServer;

  constructor(private readonly opts: ServerOptions) {
    const routes: Record<string, Route> = {
      [ROUTES.nonce]: async (b) => {
        assertNonceRequest(b);
        const r: NonceResponse = { v: 1, nonce: (await this.opts.nonces.issue()).toString('base64'), ttlSeconds: Math.round(this.opts.nonces.ttlMs / 1000) };
        return r;
      },
      [ROUTES.challenge]: async (b, { client }) => {
        assertChallengeRequest(b);
        return this.opts.attestor.challenge(b, client);
      },
      [ROUTES.complete]: async (b, { client }) => {
        assertCompleteRequest(b);
        return this.opts.attestor.complete(b, client);
      },
      [ROUTES.confirm]: async (b, { client }) => {
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
    this.http = new HttpsJsonServer({
      tls: { keyPem: opts.tlsKeyPem, certPem: opts.tlsCertPem },
      routes,
      limiter: opts.limiter,
      maxRequestBytes: opts.maxRequestBytes,
      // An agent keeps one connection for both rounds; between them its TPM activates the
      // credential and quotes (seconds on a slow TPM), longer than Node's 5 s default.
      keepAliveTimeoutMs: 30_000,
      // A cluster's nodes boot at once after an outage: queue their connections rather than reset them.
      backlog: 4096,
      log: opts.log,
    });
  }

  /** One request body for one route without the HTTP layer (fuzzing calls it); never throws. */
  answer(route: string, body: Buffer | string, client: string): Promise<Answer> {
    return this.http.answer(route, body, { client, identity: client, afterAnswer: (f) => f() });
  }

  private self(): ServiceSelfAttestation {
    if (!this.opts.selfAttestation) throw new SextantError({ code: 'KEYSERVICE_NOT_ATTESTED', message: 'this key service does not attest itself (start it with --tpm-tcti)' });
    return this.opts.selfAttestation;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return this.http.listen(host, port);
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
