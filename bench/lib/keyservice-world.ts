/**
 * The key service as bench/keyservice.ts runs it: the real attestor on recorded real swtpm
 * evidence (test/fixtures/keyservice/evidence.json), a durable audit log, the real nonce
 * store. Only two things are simulated, each documented where it happens: the quote replays
 * the recorded nonce, and the agent learns the credential from the service (a TPM's
 * ActivateCredential is the agent's cost, not the service's).
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeyServiceAttestor } from '../../keyservice/attestor.js';
import { AuditLog } from '../../keyservice/audit/log.js';
import { NonceStore } from '../../keyservice/nonce-store.js';
import { replaySha256 } from '../../keyservice/service.js';
import type { NonceBook } from '../../keyservice/store/store.js';
import { codecTpmChecks } from '../../attestation/tpm/codec-checks.js';
import type { TpmChecks } from '../../attestation/tpm/checks.js';
import type { CompleteRequest } from '../../protocol/messages.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const EVIDENCE = path.resolve(here, '../../../test/fixtures/keyservice/evidence.json');

export interface Evidence {
  ekCert: string;
  ekRoot: string;
  ekIssuer: string;
  akPublic: string;
  nonce: string;
  ephemeralPublicKey: string;
  quoteAttest: string;
  quoteSignature: string;
  pcrs: Record<string, string>;
  eventLog: string;
}

export const ev = JSON.parse(await readFile(EVIDENCE, 'utf8')) as Evidence;

/**
 * The real nonce store doing its real work per attestation (a fresh random nonce issued,
 * later taken once), while the agents replay the recorded quote, which is bound to the
 * recorded nonce: `issue` hands out the recorded bytes, `take` uses up the oldest fresh
 * nonce in their place. Every attestation is accepted as fresh; the store's cost is paid.
 */
export class ReplayNonceBook implements NonceBook {
  private readonly store: NonceStore;
  private readonly outstanding: Buffer[] = [];

  constructor(ttlMs = 60_000) {
    this.store = new NonceStore({ ttlMs, maxEntries: 10_000_000 });
  }

  get ttlMs(): number {
    return this.store.ttlMs;
  }

  issue(): Buffer {
    this.outstanding.push(this.store.issue());
    return Buffer.from(ev.nonce, 'base64');
  }

  take(): undefined {
    const fresh = this.outstanding.shift();
    const refused = fresh ? this.store.take(fresh) : undefined;
    if (refused) throw refused;
    return undefined;
  }
}

export interface BenchAttestor {
  attestor: KeyServiceAttestor;
  nonces: ReplayNonceBook;
  audit: AuditLog;
  /** The credential the service made for this blob (what the agent's TPM would have activated). */
  credentialFor(blobB64: string): Buffer;
}

export async function benchAttestor(dir: string, maxSessions = 1_000_000): Promise<BenchAttestor> {
  const audit = await AuditLog.open(path.join(dir, 'audit.log'));
  const nonces = new ReplayNonceBook();
  const credentials = new Map<string, Buffer>();
  const tpm: TpmChecks = {
    ...codecTpmChecks,
    makeCredential: (ek, name, secret) => {
      const r = codecTpmChecks.makeCredential(ek, name, secret);
      credentials.set(r.credentialBlob.toString('base64'), Buffer.from(secret));
      return r;
    },
  };
  const attestor = new KeyServiceAttestor({
    ekCas: [new X509Certificate(ev.ekRoot), new X509Certificate(ev.ekIssuer)],
    tpm,
    nonces,
    references: () => [{ label: 'bench', pcrs: { '4': { expected: ev.pcrs['4'], enforced: true }, '9': { expected: ev.pcrs['9'], enforced: true } } }],
    masterSecret: Buffer.alloc(32, 7),
    salt: Buffer.alloc(32, 8),
    audit,
    replayEventLog: replaySha256,
    maxSessions,
  });
  return {
    attestor,
    nonces,
    audit,
    credentialFor: (blob) => {
      const c = credentials.get(blob);
      credentials.delete(blob);
      return c ?? Buffer.alloc(32);
    },
  };
}

export function round2(sessionId: string, credential: Buffer, nonce: string, i: number): CompleteRequest {
  return {
    v: 1,
    sessionId,
    activatedCredential: credential.toString('base64'),
    nonce,
    ephemeralPublicKey: ev.ephemeralPublicKey,
    quoteAttest: ev.quoteAttest,
    quoteSignature: ev.quoteSignature,
    pcrs: ev.pcrs,
    eventLog: ev.eventLog,
    diskUuid: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    role: 'join',
    nodeName: 'bench-node',
  };
}
