import test from 'ava';
import { createECDH, createDecipheriv, hkdfSync } from 'node:crypto';
import { generateEphemeralKey, open, qualifyingData, seal, sealContext } from '../../protocol/seal.js';
import { hash } from '../../lib/bytes.js';

const ctx = sealContext('0123456789abcdef0123456789abcdef', Buffer.alloc(32, 7), Buffer.alloc(65, 4));

test('a sealed box opens with the recipient key and yields the plaintext', (t) => {
  const k = generateEphemeralKey();
  const box = seal(Buffer.from('disk key material'), k.publicKey, ctx);
  t.is(open(box, k, ctx).toString(), 'disk key material');
});

test('the box is ECDH P-256 -> HKDF-SHA256 -> AES-256-GCM as documented (independent decryption)', (t) => {
  const k = generateEphemeralKey();
  const box = seal(Buffer.from('hello'), k.publicKey, ctx);
  const epk = Buffer.from(box.epk, 'base64');
  const shared = k.ecdh.computeSecret(epk);
  const key = Buffer.from(hkdfSync('sha256', shared, ctx, Buffer.concat([Buffer.from('sextant-seal-v1'), k.publicKey, epk]), 32));
  const ct = Buffer.from(box.ct, 'base64');
  const d = createDecipheriv('aes-256-gcm', key, Buffer.from(box.iv, 'base64'));
  d.setAAD(ctx);
  d.setAuthTag(ct.subarray(-16));
  t.is(Buffer.concat([d.update(ct.subarray(0, -16)), d.final()]).toString(), 'hello');
});

test('another key, another session context or a flipped bit is SEAL_INVALID', (t) => {
  const k = generateEphemeralKey();
  const box = seal(Buffer.from('secret'), k.publicKey, ctx);
  t.throws(() => open(box, generateEphemeralKey(), ctx), { code: 'SEAL_INVALID' } as never);
  const otherCtx = sealContext('ffffffffffffffffffffffffffffffff', Buffer.alloc(32, 7), Buffer.alloc(65, 4));
  t.throws(() => open(box, k, otherCtx), { code: 'SEAL_INVALID' } as never);
  const ct = Buffer.from(box.ct, 'base64');
  ct[0] ^= 1;
  t.throws(() => open({ ...box, ct: ct.toString('base64') }, k, ctx), { code: 'SEAL_INVALID' } as never);
});

test('sealing to something that is not a P-256 point is SEAL_INVALID', (t) => {
  const bad = Buffer.alloc(65, 4);
  t.throws(() => seal(Buffer.from('x'), bad, ctx), { code: 'SEAL_INVALID' } as never);
});

test('qualifying data is SHA-256(nonce || ephemeral public key)', (t) => {
  const nonce = Buffer.alloc(32, 1);
  const pub = createECDH('prime256v1').generateKeys();
  t.deepEqual(qualifyingData(nonce, pub), hash('sha256', Buffer.concat([nonce, pub])));
});
