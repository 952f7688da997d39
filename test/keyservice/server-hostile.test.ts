/**
 * Issue 11, finding 1 and the request half of 3, against the real `sextant keyservice`
 * process over HTTPS: one unauthenticated request must not end the process, and a refused
 * unauthenticated request may write only a small, fixed-size record to the audit log.
 */
import test from 'ava';
import { ROUTES } from '../../protocol/messages.js';
import { RawHttps } from '../helpers/raw-https.js';
import { deepArraysText, KEYSERVICE_SAMPLES, sampleComplete } from '../helpers/protocol-samples.js';
import { startKeyServiceTarget, type KeyServiceTarget } from '../helpers/keyservice-target.js';

let target: KeyServiceTarget;
let http: RawHttps;

test.before(async () => {
  target = await startKeyServiceTarget();
  http = new RawHttps(target.service.listening);
});

test.after.always(async () => {
  http?.close();
  await target?.stop();
});

/** A body whose `inventory` is raw JSON text (so the test can send what JSON.stringify cannot make). */
function completeWithInventory(inventoryJson: string): string {
  return JSON.stringify({ ...sampleComplete(), inventory: '__INV__' }).replace('"__INV__"', inventoryJson);
}

async function stillServes(t: import('ava').ExecutionContext): Promise<void> {
  t.true(target.alive(), 'the key service process exited');
  const n = await http.post(ROUTES.nonce, '{}');
  t.is(n.status, 200);
}

test.serial('a round-2 request with a made-up session and a 40 KB deeply nested inventory is a 400 and the process keeps serving', async (t) => {
  const pid = target.service.child.pid;
  const body = completeWithInventory(`{"x":${deepArraysText(20_000)}}`);
  t.true(body.length > 40_000);
  const r = await http.post(ROUTES.complete, body).catch((e: Error) => ({ status: 0, json: undefined, text: e.message }));
  t.is(r.status, 400, r.text.slice(0, 200));
  t.is(r.json?.code, 'PROTOCOL_INVALID');
  await stillServes(t);
  t.is(target.service.child.pid, pid);
});

test.serial('deep nesting anywhere in any endpoint is refused before it is parsed', async (t) => {
  for (const route of Object.keys(KEYSERVICE_SAMPLES)) {
    const body = JSON.stringify({ ...KEYSERVICE_SAMPLES[route](), deep: '__D__' }).replace('"__D__"', deepArraysText(50_000));
    const r = await http.post(route, body).catch((e: Error) => ({ status: 0, json: undefined, text: e.message }));
    t.is(r.status, 400, `${route}: ${r.text.slice(0, 200)}`);
    t.is(r.json?.code, 'PROTOCOL_INVALID', route);
  }
  await stillServes(t);
});

test.serial('a refused unauthenticated request writes at most 1 KiB to the audit log (was ~489 KiB of attacker data)', async (t) => {
  const big = 'A'.repeat(480 * 1024);
  const attacks: [string, string][] = [
    // The flood from the review: attacker bytes in an unchecked inventory key.
    [ROUTES.complete, completeWithInventory(JSON.stringify({ x: big }))],
    // The largest inventory the schema allows, with a made-up session.
    [ROUTES.complete, completeWithInventory(JSON.stringify({ vendor: 'v'.repeat(256), model: 'm'.repeat(256), serial: 's'.repeat(256), disks: Array.from({ length: 64 }, (_, i) => ({ name: `d${i}`.padEnd(64, 'x'), size: 2 ** 52, serial: 'z'.repeat(256) })) }))],
    [ROUTES.complete, JSON.stringify({ ...sampleComplete(), nodeName: 'n'.repeat(63) })],
    [ROUTES.challenge, JSON.stringify(KEYSERVICE_SAMPLES[ROUTES.challenge]())],
    [ROUTES.challenge, JSON.stringify({ v: 1, ekCert: Buffer.alloc(8192, 0x30).toString('base64'), ekChain: Array(4).fill(Buffer.alloc(8192, 0x30).toString('base64')), akPublic: Buffer.alloc(1024, 1).toString('base64') })],
    [ROUTES.confirm, JSON.stringify(KEYSERVICE_SAMPLES[ROUTES.confirm]())],
  ];
  let max = 0;
  for (const [route, body] of attacks) {
    const before = await target.auditBytes();
    const r = await http.post(route, body);
    t.true(r.status >= 400 && r.status < 500, `${route}: ${r.status} ${r.text.slice(0, 200)}`);
    const wrote = (await target.auditBytes()) - before;
    t.log(`${route} (${body.length} bytes): ${r.status} ${r.json?.code}, ${wrote} audit bytes`);
    max = Math.max(max, wrote);
  }
  t.log(`max audit bytes per refused unauthenticated request: ${max}`);
  t.true(max <= 1024, `a refused request wrote ${max} audit bytes`);
  await stillServes(t);
});
