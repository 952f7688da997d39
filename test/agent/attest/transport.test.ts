/**
 * The agent's pinned HTTPS client against real TLS servers on loopback: one kept-alive
 * connection for the requests of an attestation, TLS sessions resumed across attestations,
 * and the certificate pin holding on resumed sessions.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { generateTlsIdentity } from '../../../agent/recovery/self-signed-cert.js';
import { PinnedClient, TlsSessionCache } from '../../../agent/attest/transport.js';

interface Seen {
  handshakes: number;
  requests: { resumed: boolean; socket: TLSSocket }[];
}

/** A JSON echo server with its own key; `ticketKeys` shared between two servers lets either resume the other's sessions. */
async function server(port = 0, ticketKeys = randomBytes(48)): Promise<{ server: Server; url: string; fingerprint: string; seen: Seen; port: number; close: () => Promise<void> }> {
  const id = generateTlsIdentity();
  const seen: Seen = { handshakes: 0, requests: [] };
  const s = createServer({ key: id.keyPem, cert: id.certPem, minVersion: 'TLSv1.3', ticketKeys }, (req, res) => {
    const socket = req.socket as TLSSocket;
    seen.requests.push({ resumed: socket.isSessionReused(), socket });
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ ok: true, n: seen.requests.length })));
  });
  s.on('secureConnection', () => seen.handshakes++);
  await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', resolve));
  const p = (s.address() as AddressInfo).port;
  return {
    server: s,
    url: `https://127.0.0.1:${p}`,
    fingerprint: id.fingerprint,
    seen,
    port: p,
    close: () => new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    }),
  };
}

test('the requests of one attestation share one TLS connection', async (t) => {
  const s = await server();
  t.teardown(s.close);
  const c = new PinnedClient({ url: s.url, fingerprint: s.fingerprint }, new TlsSessionCache());
  await c.post('/v1/attest/challenge', {});
  await c.post('/v1/attest/complete', {});
  c.close();
  t.is(s.seen.requests.length, 2);
  t.is(s.seen.handshakes, 1);
  t.is(s.seen.requests[0].socket, s.seen.requests[1].socket);
});

test('the next attestation resumes the TLS session of the last one', async (t) => {
  const s = await server();
  t.teardown(s.close);
  const sessions = new TlsSessionCache();
  for (let i = 0; i < 3; i++) {
    const c = new PinnedClient({ url: s.url, fingerprint: s.fingerprint }, sessions);
    t.deepEqual(await c.post('/x', {}), { ok: true, n: i + 1 });
    c.close();
  }
  t.is(s.seen.handshakes, 3);
  t.deepEqual(s.seen.requests.map((r) => r.resumed), [false, true, true]);
});

test('a session is never offered under another pin: pinned to a different key, the client does a full handshake and refuses before sending', async (t) => {
  const s = await server();
  t.teardown(s.close);
  const sessions = new TlsSessionCache();
  const a = new PinnedClient({ url: s.url, fingerprint: s.fingerprint }, sessions);
  await a.post('/x', {});
  a.close();
  // The server would resume the session (its own ticket): the client must not offer it for another pin.
  const other = generateTlsIdentity().fingerprint;
  const b = new PinnedClient({ url: s.url, fingerprint: other }, sessions);
  // The server's certificate in the refusal: a full handshake, not a resumption (which carries none).
  await t.throwsAsync(b.post('/x', {}), { code: 'TLS_FINGERPRINT_MISMATCH', message: new RegExp(`presented certificate ${s.fingerprint}`) });
  b.close();
  t.is(s.seen.requests.length, 1, 'no request reached the server');
});

test('a resumed session to a server with a different key is refused: the pinned session is offered, the other server cannot resume it, its certificate fails the pin', async (t) => {
  const a = await server();
  const sessions = new TlsSessionCache();
  const ep = { url: a.url, fingerprint: a.fingerprint };
  const c1 = new PinnedClient(ep, sessions);
  await c1.post('/x', {});
  c1.close();
  await a.close();
  // Same address, another key (and, as any other server, other ticket keys).
  const b = await server(a.port);
  t.teardown(b.close);
  const c2 = new PinnedClient(ep, sessions);
  await t.throwsAsync(c2.post('/x', {}), { code: 'TLS_FINGERPRINT_MISMATCH', message: new RegExp(`presented certificate ${b.fingerprint}`) });
  c2.close();
  t.is(b.seen.requests.length, 0, 'no request reached the other server');
});

test('a server that shares the pinned server\'s ticket keys resumes without a certificate; with a different pin nothing is offered and it is refused', async (t) => {
  // The boundary of what resumption proves: holding the session's ticket key. Replicas that
  // share one TLS identity may share ticket keys; a session is still never offered under another pin.
  const keys = randomBytes(48);
  const a = await server(0, keys);
  const sessions = new TlsSessionCache();
  const c1 = new PinnedClient({ url: a.url, fingerprint: a.fingerprint }, sessions);
  await c1.post('/x', {});
  c1.close();
  const port = a.port;
  await a.close();
  const b = await server(port, keys);
  t.teardown(b.close);
  const c2 = new PinnedClient({ url: b.url, fingerprint: b.fingerprint }, sessions);
  await c2.post('/x', {});
  c2.close();
  t.false(b.seen.requests[0].resumed, 'pinned to b: a full handshake with b\'s certificate');
});

test('timeoutMs bounds the whole request: a pinned server that trickles its answer a byte at a time is cut off, KEYSERVICE_UNREACHABLE', async (t) => {
  const id = generateTlsIdentity();
  const timers = new Set<NodeJS.Timeout>();
  const s = createServer({ key: id.keyPem, cert: id.certPem }, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"ok":');
    const tick = setInterval(() => res.write(' '), 50);
    timers.add(tick);
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const tick of timers) clearInterval(tick);
    s.closeAllConnections();
    s.close();
  });
  const c = new PinnedClient({ url: `https://127.0.0.1:${(s.address() as AddressInfo).port}`, fingerprint: id.fingerprint, timeoutMs: 500 }, new TlsSessionCache());
  const started = Date.now();
  const e = await t.throwsAsync(c.post('/v1/attest/challenge', {}));
  c.close();
  t.is((e as { code?: string }).code, 'KEYSERVICE_UNREACHABLE');
  t.true(Date.now() - started < 3000, `${Date.now() - started} ms`);
});
