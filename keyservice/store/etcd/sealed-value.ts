import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM for values kept in etcd (sessions): iv(12) || tag(16) || ciphertext, with the
 * etcd key as associated data so a value moved to another key does not open. A value that
 * does not open is treated as absent (the session is unknown), never as an error that leaks.
 */
export function sealValue(key: Buffer, name: string, plain: Buffer): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(name, 'utf8'));
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), body]);
}

export function openValue(key: Buffer, name: string, sealed: Buffer): Buffer | undefined {
  if (sealed.length < 28) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
    d.setAAD(Buffer.from(name, 'utf8'));
    d.setAuthTag(sealed.subarray(12, 28));
    return Buffer.concat([d.update(sealed.subarray(28)), d.final()]);
  } catch {
    return undefined;
  }
}
