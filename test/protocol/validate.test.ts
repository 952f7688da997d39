import test from 'ava';
import fc from 'fast-check';
import {
  assertChallengeRequest,
  assertChallengeResponse,
  assertCompleteRequest,
  assertCompleteResponse,
  assertConfirmRequest,
  assertConfirmResponse,
  assertServiceActivateRequest,
  assertServiceActivateResponse,
  assertServiceAttestRequest,
  assertServiceAttestResponse,
  assertRecoveryEvidenceRequest,
  assertRecoveryEvidenceResponse,
  assertRecoveryQuoteRequest,
  assertRecoveryQuoteResponse,
  assertRecoveryReleaseRequest,
  assertRecoveryReleaseResponse,
  assertReleasedSecrets,
} from '../../protocol/validate.js';
import { isSextantError } from '../../lib/errors.js';

const b64 = (n: number, fill = 1) => Buffer.alloc(n, fill).toString('base64');
const pcrs = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [String(i), '00'.repeat(32)]));

const goodComplete = {
  v: 1,
  sessionId: 'ab'.repeat(16),
  activatedCredential: b64(32),
  nonce: b64(32),
  ephemeralPublicKey: b64(65),
  quoteAttest: b64(145),
  quoteSignature: b64(72),
  pcrs,
  diskUuid: '0f3c2b9e-1a2b-4c3d-8e9f-00112233aabb',
  role: 'join',
  nodeName: 'worker-1',
};

test('a well-formed round-2 request passes', (t) => {
  t.notThrows(() => assertCompleteRequest(goodComplete));
});

test('every bad field is listed in one PROTOCOL_INVALID error', (t) => {
  const bad = { ...goodComplete, nonce: b64(31), role: 'admin', diskUuid: 'NOT-A-UUID', pcrs: { ...pcrs, 16: 'zz' } };
  const e = t.throws(() => assertCompleteRequest(bad));
  t.is((e as { code?: string }).code, 'PROTOCOL_INVALID');
  for (const f of ['nonce', 'role', 'diskUuid', 'pcrs.16']) t.true(e!.message.includes(f), f);
});

test('missing PCRs are refused (the quote covers 0-15)', (t) => {
  const p = { ...pcrs };
  delete (p as Record<string, string>)['9'];
  t.throws(() => assertCompleteRequest({ ...goodComplete, pcrs: p }), { code: 'PROTOCOL_INVALID' } as never);
});

test('fuzz: validators never throw anything but PROTOCOL_INVALID', (t) => {
  const validators: ((x: unknown) => void)[] = [assertChallengeRequest, assertCompleteRequest, assertCompleteResponse, assertReleasedSecrets, assertConfirmRequest, assertConfirmResponse];
  fc.assert(
    fc.property(fc.jsonValue(), fc.nat(validators.length - 1), (x, i) => {
      try {
        validators[i](x);
      } catch (e) {
        return isSextantError(e, 'PROTOCOL_INVALID');
      }
      return true;
    }),
    { numRuns: 500 },
  );
  t.true(fuzzFieldsOnlyProtocolInvalid(assertCompleteRequest, goodComplete));
});

/** One field of a good message (or a field it lacks) set to random JSON: nothing but PROTOCOL_INVALID may come out. */
function fuzzFieldsOnlyProtocolInvalid(validate: (x: unknown) => void, good: Record<string, unknown>, moreKeys: string[] = []): boolean {
  fc.assert(
    fc.property(fc.constantFrom(...Object.keys(good), ...moreKeys), fc.jsonValue(), (key, value) => {
      try {
        validate({ ...good, [key]: value });
      } catch (e) {
        return isSextantError(e, 'PROTOCOL_INVALID');
      }
      return true;
    }),
    { numRuns: 500 },
  );
  return true;
}

// ---- recovery messages ----

const { sessionId: _s, nonce: _n, role: _r, nodeName: _nn, ...evidence } = goodComplete;
const goodRecoveryQuote = { ...evidence, session: 'cd'.repeat(16) };
const box = { epk: b64(65), iv: b64(12), ct: b64(80) };

test('recovery messages: well-formed ones pass, each bad field is named', (t) => {
  t.notThrows(() => assertRecoveryEvidenceRequest({ v: 1, nonce: b64(32) }));
  t.notThrows(() => assertRecoveryEvidenceResponse({ v: 1, session: 'ab'.repeat(16), ekCert: b64(600), akPublic: b64(90) }));
  t.notThrows(() => assertRecoveryQuoteRequest({ v: 1, session: 'ab'.repeat(16), challenge: { v: 1, sessionId: 'ef'.repeat(16), credentialBlob: b64(68), encryptedSecret: b64(256), ttlSeconds: 60 } }));
  t.notThrows(() => assertRecoveryQuoteResponse(goodRecoveryQuote));
  t.notThrows(() => assertRecoveryReleaseRequest({ v: 1, session: 'ab'.repeat(16), sealed: box }));
  const e = t.throws(() => assertRecoveryQuoteResponse({ ...goodRecoveryQuote, diskUuid: 'x', ephemeralPublicKey: b64(64) }));
  t.is((e as { code?: string }).code, 'PROTOCOL_INVALID');
  for (const f of ['diskUuid', 'ephemeralPublicKey']) t.true(e!.message.includes(f), f);
  t.throws(() => assertRecoveryReleaseRequest({ v: 1, session: 'ab'.repeat(16), sealed: { ...box, iv: b64(16) } }), { code: 'PROTOCOL_INVALID' } as never);
  t.throws(() => assertRecoveryEvidenceRequest({ v: 1, nonce: b64(16) }), { code: 'PROTOCOL_INVALID' } as never);
});

test('fuzz: recovery validators never throw anything but PROTOCOL_INVALID', (t) => {
  const validators: ((x: unknown) => void)[] = [
    assertRecoveryEvidenceRequest,
    assertRecoveryEvidenceResponse,
    assertRecoveryQuoteRequest,
    assertRecoveryQuoteResponse,
    assertRecoveryReleaseRequest,
    assertRecoveryReleaseResponse,
  ];
  const holds = (f: () => void) => {
    try {
      f();
    } catch (e) {
      return isSextantError(e, 'PROTOCOL_INVALID');
    }
    return true;
  };
  fc.assert(fc.property(fc.jsonValue(), fc.nat(validators.length - 1), (x, i) => holds(() => validators[i](x))), { numRuns: 500 });
  fc.assert(
    fc.property(fc.record({ key: fc.constantFrom(...Object.keys(goodRecoveryQuote), 'nodeName', 'eventLog'), value: fc.jsonValue() }), ({ key, value }) =>
      holds(() => assertRecoveryQuoteResponse({ ...goodRecoveryQuote, [key]: value })),
    ),
    { numRuns: 500 },
  );
  t.pass();
});

const goodConfirm = { v: 1, confirmId: 'cd'.repeat(16), nonce: b64(32), quoteAttest: b64(145), quoteSignature: b64(72), pcrs };

test('confirm round: a well-formed request passes; bad fields are listed; the sealed confirm session is checked', (t) => {
  t.notThrows(() => assertConfirmRequest(goodConfirm));
  const e = t.throws(() => assertConfirmRequest({ ...goodConfirm, confirmId: 'x', nonce: b64(16), pcrs: { ...pcrs, 15: 'AB'.repeat(32) } }));
  for (const f of ['confirmId', 'nonce', 'pcrs.15']) t.true(e!.message.includes(f), f);
  t.notThrows(() => assertConfirmResponse({ v: 1, ok: true, clusterId: 'ab'.repeat(32), pcr15: 'cd'.repeat(32) }));
  const secrets = { diskKey: b64(32), clusterId: 'ab'.repeat(32) };
  t.notThrows(() => assertReleasedSecrets({ ...secrets, confirm: { id: 'ef'.repeat(16), expiresAt: new Date().toISOString() } }));
  t.throws(() => assertReleasedSecrets({ ...secrets, confirm: { id: 'ef', expiresAt: 'soon' } }), { code: 'PROTOCOL_INVALID' } as never);
});

test('mutual attestation messages: well-formed pass, bad fields named, fuzz gives only PROTOCOL_INVALID', (t) => {
  const evidence = { v: 1, ekCert: b64(600), akPublic: b64(90), quoteAttest: b64(145), quoteSignature: b64(72), pcrs };
  t.notThrows(() => assertServiceAttestRequest({ v: 1, nonce: b64(32) }));
  t.notThrows(() => assertServiceAttestResponse(evidence));
  t.notThrows(() => assertServiceActivateRequest({ v: 1, credentialBlob: b64(68), encryptedSecret: b64(256) }));
  t.notThrows(() => assertServiceActivateResponse({ v: 1, credential: b64(32) }));
  const e = t.throws(() => assertServiceAttestResponse({ ...evidence, akPublic: 'not base64!', pcrs: { ...pcrs, 3: 'x' } }));
  for (const f of ['akPublic', 'pcrs.3']) t.true(e!.message.includes(f), f);
  t.true(fuzzOnlyProtocolInvalid([assertServiceAttestRequest, assertServiceAttestResponse, assertServiceActivateRequest, assertServiceActivateResponse]));
});

/** Random JSON into each validator: nothing but PROTOCOL_INVALID may come out. */
function fuzzOnlyProtocolInvalid(validators: ((x: unknown) => void)[]): boolean {
  fc.assert(
    fc.property(fc.jsonValue(), fc.nat(validators.length - 1), (x, i) => {
      try {
        validators[i](x);
      } catch (err) {
        return isSextantError(err, 'PROTOCOL_INVALID');
      }
      return true;
    }),
    { numRuns: 300 },
  );
  return true;
}

test('round 1 may ask for the nonce (withNonce: true only); the answer carries it only then, bounded like a nonce answer', (t) => {
  const round1 = { v: 1, ekCert: b64(600), akPublic: b64(90) };
  t.notThrows(() => assertChallengeRequest(round1));
  t.notThrows(() => assertChallengeRequest({ ...round1, withNonce: true }));
  for (const bad of [false, 1, 'yes']) t.throws(() => assertChallengeRequest({ ...round1, withNonce: bad }), { code: 'PROTOCOL_INVALID', message: /withNonce/ } as never);
  const answer = { v: 1, sessionId: 'ab'.repeat(16), credentialBlob: b64(68), encryptedSecret: b64(256), ttlSeconds: 60 };
  t.notThrows(() => assertChallengeResponse(answer));
  t.notThrows(() => assertChallengeResponse({ ...answer, nonce: b64(32), nonceTtlSeconds: 60 }));
  t.throws(() => assertChallengeResponse({ ...answer, nonce: b64(16), nonceTtlSeconds: 60 }), { code: 'PROTOCOL_INVALID', message: /nonce/ } as never);
});

test('round 1 fuzz: any subset of the optional fields passes exactly when it has one of ekCert and ekPublic; any field set to random JSON gives only PROTOCOL_INVALID', (t) => {
  const optional = { ekCert: b64(600), ekPublic: b64(300), ekChain: [b64(500)], withNonce: true as const };
  fc.assert(
    fc.property(fc.subarray(Object.keys(optional) as (keyof typeof optional)[]), (keys) => {
      const req = { v: 1, akPublic: b64(90), ...Object.fromEntries(keys.map((k) => [k, optional[k]])) };
      const ok = keys.includes('ekCert') !== keys.includes('ekPublic');
      try {
        assertChallengeRequest(req);
        return ok;
      } catch (e) {
        return !ok && isSextantError(e, 'PROTOCOL_INVALID') && /exactly one of ekCert and ekPublic/.test((e as Error).message);
      }
    }),
  );
  t.true(fuzzFieldsOnlyProtocolInvalid(assertChallengeRequest, { v: 1, ekCert: b64(600), akPublic: b64(90), ekChain: [b64(500)], withNonce: true }, ['ekPublic', 'extra']));
});

test('round 1 answer: the nonce comes with its lifetime or neither does', (t) => {
  const answer = { v: 1, sessionId: 'ab'.repeat(16), credentialBlob: b64(68), encryptedSecret: b64(256), ttlSeconds: 60 };
  t.notThrows(() => assertChallengeResponse({ ...answer, nonce: b64(32), nonceTtlSeconds: 60 }));
  t.throws(() => assertChallengeResponse({ ...answer, nonce: b64(32) }), { code: 'PROTOCOL_INVALID', message: /both of nonce and nonceTtlSeconds or neither/ } as never);
  t.throws(() => assertChallengeResponse({ ...answer, nonceTtlSeconds: 60 }), { code: 'PROTOCOL_INVALID', message: /both of nonce and nonceTtlSeconds or neither/ } as never);
});
