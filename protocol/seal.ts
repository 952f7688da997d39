import { createCipheriv, createDecipheriv, createECDH, hkdfSync, randomBytes, type ECDH } from 'node:crypto';
import { SextantError } from '../lib/errors.js';
import { hash, zeroize } from '../lib/bytes.js';
import type { SealedBox } from './messages.js';

/**
 * Sealing of the key service's answer to the agent's ephemeral P-256 key:
 * ECDH(service one-time key, agent ephemeral key) -> HKDF-SHA256 -> AES-256-GCM.
 * The agent's public key is bound into the quote (see qualifyingData), so only the process
 * that asked the attested TPM for that quote can open the box. `context` (the session
 * transcript hash) is both the HKDF salt and the GCM additional data: a box cannot be moved
 * to another session.
 */

const CURVE = 'prime256v1';
const INFO = Buffer.from('sextant-seal-v1', 'utf8');

/**
 * An agent's one-time key pair. Its private key stays inside the ECDH object until it is
 * garbage-collected: drop the reference once the answer is opened (it cannot be wiped).
 */
export interface EphemeralKey {
  readonly publicKey: Buffer;
  readonly ecdh: ECDH;
}

export function generateEphemeralKey(): EphemeralKey {
  const ecdh = createECDH(CURVE);
  const publicKey = ecdh.generateKeys();
  return { publicKey, ecdh };
}

/** H(nonce || ephemeral public key): the TPM2_Quote qualifying data (extraData). */
export function qualifyingData(nonce: Uint8Array, ephemeralPublicKey: Uint8Array): Buffer {
  return hash('sha256', nonce, ephemeralPublicKey);
}

/** The confirm round's qualifying data: binds the quote to the confirm session and a fresh nonce. */
export function confirmQualifyingData(confirmId: string, nonce: Uint8Array): Buffer {
  return hash('sha256', Buffer.from('sextant-confirm-v1\0' + confirmId + '\0', 'utf8'), nonce);
}

/**
 * The key service's self-quote qualifying data: the agent's nonce and the SHA-256 of the DER
 * TLS certificate the agent's connection presented (its pinned fingerprint).
 */
export function serviceQualifyingData(nonce: Uint8Array, tlsCertSha256: Uint8Array): Buffer {
  return hash('sha256', Buffer.from('sextant-service-v1\0', 'utf8'), nonce, tlsCertSha256);
}

/** The transcript both sides know at release time: binds the box to nonce, session and agent key. */
export function sealContext(sessionId: string, nonce: Uint8Array, ephemeralPublicKey: Uint8Array): Buffer {
  return hash('sha256', Buffer.from('sextant-attest-v1\0' + sessionId + '\0', 'utf8'), nonce, ephemeralPublicKey);
}

function deriveKey(shared: Uint8Array, context: Uint8Array, recipientPub: Uint8Array, senderPub: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, context, Buffer.concat([INFO, recipientPub, senderPub]), 32));
}

function sharedSecret(ecdh: ECDH, peerPublicKey: Uint8Array): Buffer {
  try {
    return ecdh.computeSecret(peerPublicKey);
  } catch (cause) {
    throw new SextantError({ code: 'SEAL_INVALID', message: 'peer public key is not a valid P-256 point', cause });
  }
}

export function seal(plaintext: Uint8Array, recipientPublicKey: Uint8Array, context: Uint8Array): SealedBox {
  const eph = createECDH(CURVE);
  const epk = eph.generateKeys();
  const shared = sharedSecret(eph, recipientPublicKey);
  const key = deriveKey(shared, context, recipientPublicKey, epk);
  try {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(context);
    const ct = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
    return { epk: epk.toString('base64'), iv: iv.toString('base64'), ct: ct.toString('base64') };
  } finally {
    // The one-time private key lives inside the ECDH object (OpenSSL memory): Node gives no
    // way to wipe it, only to drop `eph` (docs/secrets-in-memory.md).
    zeroize(shared, key);
  }
}

export function open(box: SealedBox, recipient: EphemeralKey, context: Uint8Array): Buffer {
  const epk = Buffer.from(box.epk, 'base64');
  const iv = Buffer.from(box.iv, 'base64');
  const ct = Buffer.from(box.ct, 'base64');
  if (epk.length !== 65 || iv.length !== 12 || ct.length < 17) {
    throw new SextantError({ code: 'SEAL_INVALID', message: 'sealed box has the wrong shape' });
  }
  const shared = sharedSecret(recipient.ecdh, epk);
  const key = deriveKey(shared, context, recipient.publicKey, epk);
  try {
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAAD(context);
    d.setAuthTag(ct.subarray(ct.length - 16));
    return Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]);
  } catch (cause) {
    throw new SextantError({ code: 'SEAL_INVALID', message: 'sealed answer does not open with this session key (tampered or not ours)', cause });
  } finally {
    zeroize(shared, key);
  }
}
