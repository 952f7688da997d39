import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { request } from 'node:https';
import { openStateDir } from '../../keyservice/state-dir.js';
import { KeyServiceServer } from '../../keyservice/server.js';
import { NonceStore } from '../../keyservice/nonce-store.js';
import { RateLimiter } from '../../keyservice/rate-limit.js';
import type { Attestor } from '../../keyservice/attestor.js';
import { postJson } from '../../agent/attest/transport.js';
import { assertNonceResponse } from '../../protocol/validate.js';

/** Routes that must never reach the verifier in these tests. */
const unreachable: Attestor = {
  challenge: () => Promise.reject(new Error('verifier reached')),
  complete: () => Promise.reject(new Error('verifier reached')),
  confirm: () => Promise.reject(new Error('verifier reached')),
};

async function start(opts: { burst?: number; maxRequestBytes?: number } = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-srv-'));
  const state = await openStateDir(dir);
  const server = new KeyServiceServer({
    tlsKeyPem: state.tlsKeyPem,
    tlsCertPem: state.tlsCertPem,
    nonces: new NonceStore(),
    attestor: unreachable,
    // A test of the burst refills (almost) never: on a loaded host three TLS round trips can take over a second.
    limiter: new RateLimiter(opts.burst ?? 100, opts.burst === undefined ? 1 : 0.001),
    maxRequestBytes: opts.maxRequestBytes ?? 4096,
  });
  const addr = await server.listen('127.0.0.1', 0);
  const ep = { url: `https://127.0.0.1:${addr.port}`, fingerprint: state.fingerprint };
  return { ep, server, cleanup: async () => { await server.close(); await rm(dir, { recursive: true }); } };
}

test('nonce over pinned TLS', async (t) => {
  const s = await start();
  const r = await postJson(s.ep, '/v1/nonce', {});
  assertNonceResponse(r);
  t.is(r.ttlSeconds, 60);
  await s.cleanup();
});

test('a different certificate fingerprint is TLS_FINGERPRINT_MISMATCH before any request byte is sent', async (t) => {
  const s = await start();
  await t.throwsAsync(postJson({ ...s.ep, fingerprint: 'sha256:' + 'ab'.repeat(32) }, '/v1/nonce', {}), { code: 'TLS_FINGERPRINT_MISMATCH' });
  await s.cleanup();
});

test('a body over the size limit is REQUEST_TOO_LARGE, also when streamed without content-length', async (t) => {
  const s = await start({ maxRequestBytes: 1000 });
  await t.throwsAsync(postJson(s.ep, '/v1/attest/complete', { pad: 'x'.repeat(5000) }), { code: 'REQUEST_TOO_LARGE' });
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${s.ep.url}/v1/attest/complete`, { method: 'POST', rejectUnauthorized: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    for (let i = 0; i < 10; i++) req.write('y'.repeat(500));
    req.end();
  });
  t.is(status, 413);
  await s.cleanup();
});

test('the per-IP rate limit answers RATE_LIMITED', async (t) => {
  const s = await start({ burst: 3 });
  for (let i = 0; i < 3; i++) await postJson(s.ep, '/v1/nonce', {});
  await t.throwsAsync(postJson(s.ep, '/v1/nonce', {}), { code: 'RATE_LIMITED' });
  await s.cleanup();
});

test('malformed requests are PROTOCOL_INVALID and never reach the verifier', async (t) => {
  const s = await start();
  await t.throwsAsync(postJson(s.ep, '/v1/attest/challenge', { v: 1, ekCert: 'not base64!' }), { code: 'PROTOCOL_INVALID' });
  await t.throwsAsync(postJson(s.ep, '/v1/attest/complete', { v: 1 }), { code: 'PROTOCOL_INVALID' });
  await t.throwsAsync(postJson(s.ep, '/v1/other', {}), { code: 'PROTOCOL_INVALID' });
  await s.cleanup();
});

test('an unreachable service is KEYSERVICE_UNREACHABLE', async (t) => {
  await t.throwsAsync(postJson({ url: 'https://127.0.0.1:1', fingerprint: 'sha256:' + '00'.repeat(32) }, '/v1/nonce', {}), { code: 'KEYSERVICE_UNREACHABLE' });
});
