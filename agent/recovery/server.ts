import { randomBytes, X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { hash, toHex, zeroize } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { HttpsJsonServer, tlsSocketOf, type Route } from '../../lib/https-json-server.js';
import { ExpiringMap } from '../../lib/expiring-map.js';
import { RateLimiter } from '../../lib/rate-limit.js';
import type { SealedBox } from '../../protocol/messages.js';
import {
  RECOVERY_ROUTES,
  type RecoveryEvidenceResponse,
  type RecoveryQuoteResponse,
  type RecoveryReleaseResponse,
} from '../../protocol/recovery-messages.js';
import { generateEphemeralKey, open, qualifyingData, sealContext, type EphemeralKey } from '../../protocol/seal.js';
import {
  assertRecoveryEvidenceRequest,
  assertRecoveryQuoteRequest,
  assertRecoveryReleaseRequest,
  assertReleasedSecrets,
} from '../../protocol/validate.js';
import type { AttestationTpm } from '../../attestation/tpm/tpm.js';
import { eventLogEvidence, produceIdentity, produceQuote } from '../../attestation/tpm/produce.js';
import { generateTlsIdentity } from './self-signed-cert.js';

/**
 * The node's recovery endpoint: while the key service is unreachable or refusing, an admin
 * can attest this node from outside (`sextant recover`) and send it the disk key. The node
 * answers the admin's nonce with its TPM identity, activates the admin's credential and
 * quotes PCRs 0-15 over H(nonce || a one-time P-256 key), then opens the admin's answer with
 * that key. An answer resolves `secrets` and closes the server only once its disk key has
 * opened the node's own LUKS2 header (`proveKey`): a forged key is refused and the endpoint
 * stays up, and nothing of a recovery answer reaches the boot flow before that proof.
 *
 * Who may ask: only a TLS client whose certificate is pinned in the node's measured
 * configuration (`trust`): the key service's own certificate, or an admin key by its SPKI
 * hash. Anyone else is refused (RECOVERY_UNAUTHORIZED) before the body is read, before any
 * TPM work. A session belongs to the identity that opened it.
 *
 * Limits as the key service: a per-address token bucket before anything is read, then the body
 * size; at most `maxSessions` half-done sessions at once, each valid `sessionTtlMs`.
 */

export interface RecoveredSecrets {
  /** The state disk's LUKS key: the caller zeroizes it once the disk is open. */
  diskKey: Buffer;
  clusterId: string;
}

/** The client identities the endpoint accepts, each `sha256:<hex>`. */
export interface RecoveryTrust {
  /** SHA-256 of a DER certificate (the key service's, as `keyservice.fingerprint` pins it). */
  certificates: readonly string[];
  /** SHA-256 of a DER SubjectPublicKeyInfo (admin keys, whatever certificate carries them). */
  publicKeys: readonly string[];
}

export interface RecoveryServerOptions {
  tpm: AttestationTpm;
  trust: RecoveryTrust;
  /**
   * True when `diskKey` opens the state disk's header (agent/disk keyOpensDisk: on a
   * read-only copy). Only then is an answer accepted; a key that opens nothing is refused.
   */
  proveKey: (diskKey: Buffer) => Promise<boolean>;
  /** The state disk whose key the admin should derive. */
  diskUuid: string;
  nodeName?: string;
  /** The firmware event log, sent to the admin when present. */
  eventLog?: Uint8Array;
  /** Default 0.0.0.0 (reachable by the admin); tests bind 127.0.0.1. */
  host?: string;
  /** Default 9443; 0 picks a free port. */
  port?: number;
  /** Aborting stops the server and rejects `secrets` with RECOVERY_FAILED. */
  signal?: AbortSignal;
  log?: (line: string) => void;
  maxRequestBytes?: number;
  rateLimit?: { burst: number; perSecond: number };
  sessionTtlMs?: number;
  maxSessions?: number;
  clock?: () => number;
}

export interface RecoveryServer {
  /** Resolves once an admin's sealed answer opened; the server is closed by then. */
  secrets: Promise<RecoveredSecrets>;
  close(): Promise<void>;
  /** `sha256:<hex>` of this run's certificate: the admin pins it with --node-fingerprint. */
  fingerprint: string;
  port: number;
}

export const RECOVERY_DEFAULTS = {
  host: '0.0.0.0',
  port: 9443,
  // The evidence and quote answers are small; the largest request is a sealed box of a few hundred bytes.
  maxRequestBytes: 64 * 1024,
  rateLimit: { burst: 10, perSecond: 1 },
  sessionTtlMs: 120_000,
  maxSessions: 4,
} as const;

interface Session {
  /** The pin the opening client matched: only it may continue this session. */
  client: string;
  nonce: Buffer;
  /** Set once the quote went out: the key and seal context the admin's answer must use. */
  quoted?: { ephemeral: EphemeralKey; sealSessionId: string };
}


const sha256Pin = (der: Buffer): string => 'sha256:' + toHex(hash('sha256', der));

/** The pin the TLS client's certificate matches (OpenSSL verified it holds the key), or RECOVERY_UNAUTHORIZED. */
export function authenticateClient(socket: TLSSocket, trust: RecoveryTrust): string {
  const raw = socket.getPeerCertificate()?.raw;
  if (!raw || raw.length === 0) {
    throw new SextantError({ code: 'RECOVERY_UNAUTHORIZED', message: 'no client certificate: recovery needs the key service\'s or a pinned admin TLS identity' });
  }
  const cert = sha256Pin(raw);
  if (trust.certificates.includes(cert)) return cert;
  let spki: string;
  try {
    spki = sha256Pin(new X509Certificate(raw).publicKey.export({ type: 'spki', format: 'der' }));
  } catch {
    throw new SextantError({ code: 'RECOVERY_UNAUTHORIZED', message: 'the client certificate does not parse' });
  }
  if (trust.publicKeys.includes(spki)) return spki;
  throw new SextantError({ code: 'RECOVERY_UNAUTHORIZED', message: `client certificate ${cert} (key ${spki}) is not pinned in this node's configuration` });
}


function dispose(s: Session): void {
  // Dropping the reference is all Node allows for an ECDH private key (docs/secrets-in-memory.md).
  s.quoted = undefined;
}

class RecoveryEndpoint {
  private readonly sessions: ExpiringMap<Session>;
  private readonly clock: () => number;
  private done = false;
  resolve!: (s: RecoveredSecrets) => void;
  reject!: (e: unknown) => void;
  readonly secrets = new Promise<RecoveredSecrets>((res, rej) => {
    this.resolve = res;
    this.reject = rej;
  });

  constructor(
    private readonly o: RecoveryServerOptions,
    private readonly onSuccess: () => void,
  ) {
    this.clock = o.clock ?? Date.now;
    // A handful of admins at once: more openers are refused, never pushing out one in progress.
    this.sessions = new ExpiringMap({ ttlMs: o.sessionTtlMs ?? RECOVERY_DEFAULTS.sessionTtlMs, maxEntries: o.maxSessions ?? RECOVERY_DEFAULTS.maxSessions, overflow: 'refuse', clock: this.clock, onDrop: dispose });
    // Nobody may be listening (the key service won the race): never an unhandled rejection.
    this.secrets.catch(() => undefined);
  }

  /** Before the body is read: a recovered endpoint refuses, then only a pinned TLS client identity is admitted. */
  admit(req: IncomingMessage): string {
    if (this.done) throw new SextantError({ code: 'RECOVERY_FAILED', message: 'this node is already recovered' });
    const identity = authenticateClient(tlsSocketOf(req), this.o.trust);
    this.o.log?.(`recovery: ${String(req.url)} from ${req.socket.remoteAddress ?? 'unknown'}`);
    return identity;
  }

  readonly routes: Record<string, Route> = {
    [RECOVERY_ROUTES.evidence]: async (body, { identity }) => {
      assertRecoveryEvidenceRequest(body);
      return this.evidence(identity, Buffer.from(body.nonce, 'base64'));
    },
    [RECOVERY_ROUTES.quote]: async (body, { identity }) => {
      assertRecoveryQuoteRequest(body);
      return this.quote(identity, body.session, body.challenge.sessionId, body.challenge.credentialBlob, body.challenge.encryptedSecret);
    },
    [RECOVERY_ROUTES.release]: async (body, { client, identity, afterAnswer }) => {
      assertRecoveryReleaseRequest(body);
      const secrets = await this.release(identity, body.session, body.sealed);
      afterAnswer(() => {
        this.o.log?.(`recovery: a disk key that opens this node's disk received from ${client} (${identity}); closing the recovery endpoint`);
        this.resolve(secrets);
        this.onSuccess();
      });
      const ok: RecoveryReleaseResponse = { v: 1, ok: true };
      return ok;
    },
  };

  private async evidence(client: string, nonce: Buffer): Promise<RecoveryEvidenceResponse> {
    const session = randomBytes(16).toString('hex');
    if (this.sessions.set(session, { client, nonce }) === false) {
      throw new SextantError({ code: 'RATE_LIMITED', message: 'too many recovery sessions in progress; retry later' });
    }
    try {
      return { v: 1, session, ...(await produceIdentity(this.o.tpm)) };
    } catch (e) {
      this.sessions.delete(session);
      throw e;
    }
  }

  private async quote(client: string, id: string, sealSessionId: string, credentialBlob: string, encryptedSecret: string): Promise<RecoveryQuoteResponse> {
    const s = this.session(id, client);
    if (s.quoted) throw new SextantError({ code: 'SESSION_UNKNOWN', message: 'this recovery session was already quoted: start again' });
    let credential: Uint8Array;
    try {
      credential = await this.o.tpm.activateCredential(Buffer.from(credentialBlob, 'base64'), Buffer.from(encryptedSecret, 'base64'));
    } catch (cause) {
      this.sessions.delete(id);
      throw new SextantError({ code: 'CREDENTIAL_ACTIVATION_FAILED', message: 'the TPM did not activate the credential (not made for this TPM\'s EK and AK)', cause });
    }
    const ephemeral = generateEphemeralKey();
    s.quoted = { ephemeral, sealSessionId };
    const quote = await produceQuote(this.o.tpm, qualifyingData(s.nonce, ephemeral.publicKey));
    try {
      return {
        v: 1,
        session: id,
        activatedCredential: Buffer.from(credential).toString('base64'),
        ephemeralPublicKey: ephemeral.publicKey.toString('base64'),
        ...quote,
        ...eventLogEvidence(this.o.eventLog),
        diskUuid: this.o.diskUuid,
        nodeName: this.o.nodeName,
      };
    } finally {
      zeroize(credential);
    }
  }

  /**
   * Opens the admin's box with the session's one-time key, then proves its disk key on the
   * node's disk; any failure ends the session (the endpoint stays up) and wipes the key.
   */
  private async release(client: string, id: string, sealed: SealedBox): Promise<RecoveredSecrets> {
    if (this.done) throw new SextantError({ code: 'RECOVERY_FAILED', message: 'this node is already recovered' });
    const s = this.session(id, client);
    // Taken, not dropped: its one-time key opens the answer below, then `dispose` wipes it.
    this.sessions.take(id);
    let secrets: RecoveredSecrets;
    try {
      if (!s.quoted) throw new SextantError({ code: 'SESSION_UNKNOWN', message: 'this recovery session has no quote yet' });
      const plain = open(sealed, s.quoted.ephemeral, sealContext(s.quoted.sealSessionId, s.nonce, s.quoted.ephemeral.publicKey));
      try {
        let parsed: unknown;
        try {
          parsed = JSON.parse(plain.toString('utf8'));
        } catch {
          throw new SextantError({ code: 'SEAL_INVALID', message: 'the sealed answer is not JSON' });
        }
        assertReleasedSecrets(parsed);
        secrets = { diskKey: Buffer.from(parsed.diskKey, 'base64'), clusterId: parsed.clusterId };
      } finally {
        zeroize(plain);
      }
    } finally {
      dispose(s);
    }
    let opens = false;
    try {
      opens = await this.o.proveKey(secrets.diskKey);
    } finally {
      if (!opens) zeroize(secrets.diskKey);
    }
    if (!opens) throw new SextantError({ code: 'DISK_WRONG_KEY', message: 'the disk key does not open this node\'s disk: refused, nothing kept; the recovery endpoint stays open' });
    if (this.done) {
      zeroize(secrets.diskKey);
      throw new SextantError({ code: 'RECOVERY_FAILED', message: 'this node is already recovered' });
    }
    this.done = true;
    return secrets;
  }

  private session(id: string, client: string): Session {
    // An expired session is dropped (and wiped) by the map.
    const s = this.sessions.get(id);
    // Another identity's session id is as unknown as an expired one (and stays its owner's).
    if (!s || s.client !== client) {
      throw new SextantError({ code: 'SESSION_UNKNOWN', message: 'recovery session unknown, used or expired: start again' });
    }
    return s;
  }

  /** Stops accepting; rejects `secrets` unless they were already delivered. */
  finish(reason: unknown): void {
    this.done = true;
    this.sessions.clear();
    this.reject(reason);
  }
}

/** Starts the HTTPS recovery endpoint with a certificate made for this run (its fingerprint is logged). */
export async function startRecoveryServer(o: RecoveryServerOptions): Promise<RecoveryServer> {
  if (o.signal?.aborted) throw new SextantError({ code: 'RECOVERY_FAILED', message: 'recovery endpoint not started: aborted' });
  const tls = generateTlsIdentity();
  let http: HttpsJsonServer | undefined;
  let closing: Promise<void> | undefined;
  const close = (reason: unknown): Promise<void> => {
    endpoint.finish(reason);
    o.signal?.removeEventListener('abort', onAbort);
    closing ??= new Promise<void>((resolve) => {
      const server = http?.server;
      if (!server?.listening) return resolve();
      server.close(() => resolve());
      // The admin's last answer is written before close is called; idle keep-alives go now.
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 1000).unref();
    });
    return closing;
  };
  const endpoint = new RecoveryEndpoint(o, () => void close(new SextantError({ code: 'RECOVERY_FAILED', message: 'recovery endpoint closed after a success' })));
  const onAbort = (): void => void close(new SextantError({ code: 'RECOVERY_FAILED', message: 'recovery endpoint stopped: aborted', cause: o.signal?.reason }));
  const rl = o.rateLimit ?? RECOVERY_DEFAULTS.rateLimit;
  // The handshake asks for a client certificate; which ones count is authenticateClient's
  // pin check, per request, before anything is read (endpoint.admit).
  http = new HttpsJsonServer({
    tls: { keyPem: tls.keyPem, certPem: tls.certPem, requestCert: true },
    routes: endpoint.routes,
    limiter: new RateLimiter(rl.burst, rl.perSecond, o.clock ?? Date.now),
    maxRequestBytes: o.maxRequestBytes ?? RECOVERY_DEFAULTS.maxRequestBytes,
    admit: (req) => endpoint.admit(req),
    log: (line) => o.log?.(`recovery: ${line}`),
    onRefusal: (client, e) => o.log?.(`recovery: refused a request from ${client}: ${e.code}: ${e.message}`),
  });
  const host = o.host ?? RECOVERY_DEFAULTS.host;
  const { port } = await http.listen(host, o.port ?? RECOVERY_DEFAULTS.port).catch((cause: unknown) => {
    throw new SextantError({ code: 'RECOVERY_FAILED', message: `cannot listen on ${host}:${o.port ?? RECOVERY_DEFAULTS.port}`, cause });
  });
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) onAbort();
  o.log?.(`recovery endpoint listening on https://${host}:${port}; certificate ${tls.fingerprint} (sextant recover --node-fingerprint ${tls.fingerprint})`);
  return {
    secrets: endpoint.secrets,
    close: () => close(new SextantError({ code: 'RECOVERY_FAILED', message: 'recovery endpoint closed' })),
    fingerprint: tls.fingerprint,
    port,
  };
}
