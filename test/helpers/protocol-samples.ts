/**
 * Well-formed request bodies for every key service and recovery endpoint, with random
 * values: they pass the schema and then fail at the first stage that checks a fact (an
 * unknown session or nonce), which is what an unauthenticated attacker can reach. Hostile
 * variants start from these.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES } from './paths.js';
import { ROUTES } from '../../protocol/messages.js';
import { RECOVERY_ROUTES } from '../../protocol/recovery-messages.js';

const b64 = (n: number): string => randomBytes(n).toString('base64');
const hex = (n: number): string => randomBytes(n).toString('hex');

export function samplePcrs(): Record<string, string> {
  return Object.fromEntries(Array.from({ length: 16 }, (_, i) => [String(i), hex(32)]));
}

export function sampleQuote(): { quoteAttest: string; quoteSignature: string; pcrs: Record<string, string> } {
  return { quoteAttest: b64(145), quoteSignature: b64(70), pcrs: samplePcrs() };
}

export function sampleComplete(): Record<string, unknown> {
  return {
    v: 1,
    sessionId: hex(16),
    activatedCredential: b64(32),
    nonce: b64(32),
    ephemeralPublicKey: Buffer.concat([Buffer.from([4]), randomBytes(64)]).toString('base64'),
    ...sampleQuote(),
    diskUuid: '7d444840-9dc0-11d1-b245-5ffdce74fad2',
    role: 'join',
    nodeName: 'worker-1',
    inventory: { vendor: 'QEMU', model: 'Standard PC', serial: 'abc', disks: [{ name: 'vda', size: 1 << 30 }] },
  };
}

/**
 * A real swtpm's EK certificate and AK public area (test/fixtures/keyservice/evidence.json,
 * recorded), so a round-1 body gets past the AK parser to the EK certificate check.
 */
const recorded = JSON.parse(readFileSync(path.join(FIXTURES, 'keyservice/evidence.json'), 'utf8')) as { ekCert: string; akPublic: string };

/** Key service routes -> a body that passes the schema (nonce takes `{}`). */
export const KEYSERVICE_SAMPLES: Record<string, () => Record<string, unknown>> = {
  [ROUTES.nonce]: () => ({}),
  [ROUTES.challenge]: () => ({ v: 1, ekCert: recorded.ekCert, akPublic: recorded.akPublic, withNonce: true }),
  [ROUTES.complete]: sampleComplete,
  [ROUTES.confirm]: () => ({ v: 1, confirmId: hex(16), nonce: b64(32), ...sampleQuote() }),
  [ROUTES.serviceAttest]: () => ({ v: 1, nonce: b64(32) }),
  [ROUTES.serviceActivate]: () => ({ v: 1, credentialBlob: b64(68), encryptedSecret: b64(256) }),
};

export const RECOVERY_SAMPLES: Record<string, () => Record<string, unknown>> = {
  [RECOVERY_ROUTES.evidence]: () => ({ v: 1, nonce: b64(32) }),
  [RECOVERY_ROUTES.quote]: () => ({ v: 1, session: hex(16), challenge: { v: 1, sessionId: hex(16), credentialBlob: b64(68), encryptedSecret: b64(256), ttlSeconds: 60 } }),
  [RECOVERY_ROUTES.release]: () => ({ v: 1, session: hex(16), sealed: { epk: Buffer.concat([Buffer.from([4]), randomBytes(64)]).toString('base64'), iv: b64(12), ct: b64(80) } }),
};

/** `{"x":[[[[...]]]]}` nested `depth` deep: the shape that crashed the key service's audit flush. */
export function deepArrays(depth: number): unknown {
  return JSON.parse('['.repeat(depth) + ']'.repeat(depth)) as unknown;
}

export function deepArraysText(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}
