import { SextantError } from '../lib/errors.js';
import type { RecoveryEvidenceRequest, RecoveryEvidenceResponse, RecoveryQuoteRequest, RecoveryQuoteResponse, RecoveryReleaseRequest, RecoveryReleaseResponse } from './recovery-messages.js';
import type { ChallengeRequest, CompleteRequest, CompleteResponse, ChallengeResponse, ConfirmRequest, ConfirmResponse, Inventory, ServiceActivateRequest, ServiceActivateResponse, ServiceAttestRequest, ServiceAttestResponse, NonceResponse, ReleasedSecrets, Role } from './messages.js';

/**
 * Runtime validation of every protocol message: both sides parse untrusted JSON. Each
 * `assert*` lists every invalid field in one PROTOCOL_INVALID error.
 */

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX64 = /^[0-9a-f]{64}$/;
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const NODE_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SESSION_RE = /^[0-9a-f]{32}$/;
const MAX_B64 = 4 * 1024 * 1024;

class Problems {
  readonly list: string[] = [];
  constructor(readonly what: string) {}
  add(field: string, why: string): void {
    this.list.push(`${field}: ${why}`);
  }
  throwIfAny(): void {
    if (this.list.length) {
      throw new SextantError({ code: 'PROTOCOL_INVALID', message: `invalid ${this.what}: ${this.list.join('; ')}` });
    }
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function root(x: unknown, what: string): { o: Record<string, unknown>; p: Problems } {
  const p = new Problems(what);
  if (!isObject(x)) {
    p.add('(root)', 'not a JSON object');
    p.throwIfAny();
  }
  const o = x as Record<string, unknown>;
  if (o.v !== 1) p.add('v', 'must be 1');
  return { o, p };
}

function b64(p: Problems, o: Record<string, unknown>, k: string, opt: { exactBytes?: number; minBytes?: number; maxBytes?: number; optional?: boolean } = {}): void {
  const v = o[k];
  if (v === undefined && opt.optional) return;
  if (typeof v !== 'string' || !B64.test(v) || v.length > MAX_B64) return p.add(k, 'must be base64');
  const n = (v.length / 4) * 3 - (v.endsWith('==') ? 2 : v.endsWith('=') ? 1 : 0);
  if (opt.exactBytes !== undefined && n !== opt.exactBytes) return p.add(k, `must be ${opt.exactBytes} bytes`);
  if (opt.minBytes !== undefined && n < opt.minBytes) return p.add(k, `must be at least ${opt.minBytes} bytes`);
  if (opt.maxBytes !== undefined && n > opt.maxBytes) return p.add(k, `must be at most ${opt.maxBytes} bytes`);
}

function matches(p: Problems, o: Record<string, unknown>, k: string, re: RegExp, what: string, optional = false): void {
  const v = o[k];
  if (v === undefined && optional) return;
  if (typeof v !== 'string' || !re.test(v)) p.add(k, `must be ${what}`);
}

function posInt(p: Problems, o: Record<string, unknown>, k: string): void {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) p.add(k, 'must be a positive integer');
}

export function decodeB64(s: string): Buffer {
  return Buffer.from(s, 'base64');
}

export function assertNonceResponse(x: unknown): asserts x is NonceResponse {
  const { o, p } = root(x, 'nonce response');
  b64(p, o, 'nonce', { exactBytes: 32 });
  posInt(p, o, 'ttlSeconds');
  p.throwIfAny();
}

/** A TPM's identity: EK certificate (+ chain) and AK public (a node's in round 1, the service's in S1). */
function checkTpmIdentity(p: Problems, o: Record<string, unknown>): void {
  b64(p, o, 'ekCert', { minBytes: 64, maxBytes: 8192 });
  b64(p, o, 'akPublic', { minBytes: 16, maxBytes: 1024 });
  if (o.ekChain !== undefined) {
    if (!Array.isArray(o.ekChain) || o.ekChain.length > 4) p.add('ekChain', 'must be a list of at most 4 certificates');
    else o.ekChain.forEach((_, i) => b64(p, o.ekChain as unknown as Record<string, unknown>, String(i), { minBytes: 64, maxBytes: 8192 }));
  }
}

/** A quote and the PCR values it covers. */
function checkQuote(p: Problems, o: Record<string, unknown>): void {
  b64(p, o, 'quoteAttest', { minBytes: 16, maxBytes: 2048 });
  b64(p, o, 'quoteSignature', { minBytes: 8, maxBytes: 1024 });
  checkPcrs(p, o.pcrs);
}

export function assertChallengeRequest(x: unknown): asserts x is ChallengeRequest {
  const { o, p } = root(x, 'challenge request');
  checkTpmIdentity(p, o);
  p.throwIfAny();
}

export function assertChallengeResponse(x: unknown): asserts x is ChallengeResponse {
  const { o, p } = root(x, 'challenge response');
  matches(p, o, 'sessionId', SESSION_RE, '32 hex digits');
  b64(p, o, 'credentialBlob', { minBytes: 16, maxBytes: 1024 });
  b64(p, o, 'encryptedSecret', { minBytes: 16, maxBytes: 1024 });
  posInt(p, o, 'ttlSeconds');
  p.throwIfAny();
}

function checkPcrs(p: Problems, v: unknown): void {
  if (!isObject(v)) return p.add('pcrs', 'must be an object of PCR index -> hex');
  const keys = Object.keys(v);
  for (let i = 0; i < 16; i++) if (!(String(i) in v)) p.add(`pcrs.${i}`, 'missing (PCRs 0-15 are quoted)');
  for (const k of keys) {
    if (!/^(?:[0-9]|1[0-5])$/.test(k)) p.add(`pcrs.${k}`, 'unexpected PCR index');
    else if (typeof v[k] !== 'string' || !HEX64.test(v[k] as string)) p.add(`pcrs.${k}`, 'must be 64 lowercase hex digits');
  }
}

function checkInventory(p: Problems, v: unknown): void {
  if (v === undefined) return;
  if (!isObject(v)) return p.add('inventory', 'must be an object');
  const inv = v as Inventory & Record<string, unknown>;
  for (const k of ['vendor', 'model', 'serial'] as const) {
    if (inv[k] !== undefined && (typeof inv[k] !== 'string' || (inv[k] as string).length > 256)) p.add(`inventory.${k}`, 'must be a short string');
  }
  if (inv.disks !== undefined) {
    if (!Array.isArray(inv.disks) || inv.disks.length > 64) return p.add('inventory.disks', 'must be a list (at most 64)');
    inv.disks.forEach((d, i) => {
      if (!isObject(d) || typeof d.name !== 'string' || typeof d.size !== 'number') p.add(`inventory.disks.${i}`, 'must be {name, size}');
    });
  }
}

/** The node's evidence in round 2 (key service) and in the recovery quote answer. */
function checkQuoteEvidence(p: Problems, o: Record<string, unknown>): void {
  b64(p, o, 'activatedCredential', { minBytes: 1, maxBytes: 64 });
  b64(p, o, 'ephemeralPublicKey', { exactBytes: 65 });
  checkQuote(p, o);
  b64(p, o, 'eventLog', { optional: true, maxBytes: MAX_B64 });
  matches(p, o, 'diskUuid', UUID_RE, 'a lowercase UUID');
}

export function assertCompleteRequest(x: unknown): asserts x is CompleteRequest {
  const { o, p } = root(x, 'attestation request');
  matches(p, o, 'sessionId', SESSION_RE, '32 hex digits');
  b64(p, o, 'nonce', { exactBytes: 32 });
  checkQuoteEvidence(p, o);
  if (o.role !== 'join' && o.role !== 'rejoin') p.add('role', 'must be "join" or "rejoin"');
  matches(p, o, 'nodeName', NODE_NAME_RE, 'a DNS-1123 label');
  if (o.csr !== undefined && (typeof o.csr !== 'string' || !o.csr.includes('-----BEGIN CERTIFICATE REQUEST-----') || o.csr.length > 16384)) {
    p.add('csr', 'must be a PEM certificate request');
  }
  checkInventory(p, o.inventory);
  p.throwIfAny();
}

function sealedBox(p: Problems, v: unknown, maxBytes: number): void {
  if (!isObject(v)) return p.add('sealed', 'must be an object');
  b64(p, v, 'epk', { exactBytes: 65 });
  b64(p, v, 'iv', { exactBytes: 12 });
  b64(p, v, 'ct', { minBytes: 17, maxBytes });
}

export function assertCompleteResponse(x: unknown): asserts x is CompleteResponse {
  const { o, p } = root(x, 'attestation response');
  if (o.ok !== true) p.add('ok', 'must be true');
  sealedBox(p, o.sealed, 256 * 1024);
  if (!Array.isArray(o.warnings) || o.warnings.some((w) => typeof w !== 'string')) p.add('warnings', 'must be a list of strings');
  p.throwIfAny();
}

export function assertReleasedSecrets(x: unknown): asserts x is ReleasedSecrets {
  const p = new Problems('released secrets');
  if (!isObject(x)) {
    p.add('(root)', 'not a JSON object');
    p.throwIfAny();
  }
  const o = x as Record<string, unknown>;
  b64(p, o, 'diskKey', { exactBytes: 32 });
  matches(p, o, 'clusterId', HEX64, '64 hex digits');
  if (o.joinTicket !== undefined) {
    if (!isObject(o.joinTicket)) p.add('joinTicket', 'must be an object');
    else {
      const t = o.joinTicket;
      for (const k of ['apiServerEndpoint', 'tokenExpiresAt', 'caCert']) if (typeof t[k] !== 'string') p.add(`joinTicket.${k}`, 'must be a string');
      matches(p, t, 'token', /^[a-z0-9]{6}\.[a-z0-9]{16}$/, 'a bootstrap token');
      matches(p, t, 'caCertHash', /^sha256:[0-9a-f]{64}$/, 'sha256:<hex>');
      if (t.kubeletCert !== undefined && typeof t.kubeletCert !== 'string') p.add('joinTicket.kubeletCert', 'must be PEM');
    }
  }
  if (o.confirm !== undefined) {
    if (!isObject(o.confirm)) p.add('confirm', 'must be an object');
    else {
      matches(p, o.confirm, 'id', SESSION_RE, '32 hex digits');
      if (typeof o.confirm.expiresAt !== 'string' || Number.isNaN(Date.parse(o.confirm.expiresAt))) p.add('confirm.expiresAt', 'must be an ISO time');
    }
  }
  p.throwIfAny();
}

export function assertConfirmRequest(x: unknown): asserts x is ConfirmRequest {
  const { o, p } = root(x, 'confirm request');
  matches(p, o, 'confirmId', SESSION_RE, '32 hex digits');
  b64(p, o, 'nonce', { exactBytes: 32 });
  checkQuote(p, o);
  p.throwIfAny();
}

export function assertConfirmResponse(x: unknown): asserts x is ConfirmResponse {
  const { o, p } = root(x, 'confirm response');
  if (o.ok !== true) p.add('ok', 'must be true');
  matches(p, o, 'clusterId', HEX64, '64 hex digits');
  matches(p, o, 'pcr15', HEX64, '64 hex digits');
  p.throwIfAny();
}

export function isRole(x: unknown): x is Role {
  return x === 'join' || x === 'rejoin';
}

// ---- recovery (protocol/recovery-messages.ts) ----


export function assertRecoveryEvidenceRequest(x: unknown): asserts x is RecoveryEvidenceRequest {
  const { o, p } = root(x, 'recovery evidence request');
  b64(p, o, 'nonce', { exactBytes: 32 });
  p.throwIfAny();
}

export function assertRecoveryEvidenceResponse(x: unknown): asserts x is RecoveryEvidenceResponse {
  const { o, p } = root(x, 'recovery evidence');
  matches(p, o, 'session', SESSION_RE, '32 hex digits');
  p.throwIfAny();
  assertChallengeRequest({ v: 1, ekCert: o.ekCert, ekChain: o.ekChain, akPublic: o.akPublic });
}

export function assertRecoveryQuoteRequest(x: unknown): asserts x is RecoveryQuoteRequest {
  const { o, p } = root(x, 'recovery quote request');
  matches(p, o, 'session', SESSION_RE, '32 hex digits');
  p.throwIfAny();
  assertChallengeResponse(o.challenge);
}

export function assertRecoveryQuoteResponse(x: unknown): asserts x is RecoveryQuoteResponse {
  const { o, p } = root(x, 'recovery quote');
  matches(p, o, 'session', SESSION_RE, '32 hex digits');
  matches(p, o, 'nodeName', NODE_NAME_RE, 'a DNS-1123 label', true);
  checkQuoteEvidence(p, o);
  p.throwIfAny();
}

export function assertRecoveryReleaseRequest(x: unknown): asserts x is RecoveryReleaseRequest {
  const { o, p } = root(x, 'recovery release');
  matches(p, o, 'session', SESSION_RE, '32 hex digits');
  sealedBox(p, o.sealed, 64 * 1024);
  p.throwIfAny();
}

export function assertRecoveryReleaseResponse(x: unknown): asserts x is RecoveryReleaseResponse {
  const { o, p } = root(x, 'recovery release answer');
  if (o.ok !== true) p.add('ok', 'must be true');
  p.throwIfAny();
}

// ---- mutual attestation (the key service's own quote) ----

export function assertServiceAttestRequest(x: unknown): asserts x is ServiceAttestRequest {
  const { o, p } = root(x, 'service attestation request');
  b64(p, o, 'nonce', { exactBytes: 32 });
  p.throwIfAny();
}

export function assertServiceAttestResponse(x: unknown): asserts x is ServiceAttestResponse {
  const { o, p } = root(x, 'service attestation');
  checkTpmIdentity(p, o);
  checkQuote(p, o);
  p.throwIfAny();
}

export function assertServiceActivateRequest(x: unknown): asserts x is ServiceActivateRequest {
  const { o, p } = root(x, 'service activation request');
  b64(p, o, 'credentialBlob', { minBytes: 16, maxBytes: 1024 });
  b64(p, o, 'encryptedSecret', { minBytes: 16, maxBytes: 1024 });
  p.throwIfAny();
}

export function assertServiceActivateResponse(x: unknown): asserts x is ServiceActivateResponse {
  const { o, p } = root(x, 'service activation');
  b64(p, o, 'credential', { minBytes: 1, maxBytes: 64 });
  p.throwIfAny();
}
