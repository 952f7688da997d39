import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/**
 * The kubelet's client key (EC P-256) and a PKCS#10 request for `system:node:<name>` in
 * `system:nodes`, built in DER here because the node image ships no openssl. The key service
 * signs it (keyservice/join-ticket.ts) and the agent installs certificate + key where the
 * kubelet looks (kubelet-cert.ts).
 */

function der(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}
const seq = (...p: Uint8Array[]) => der(0x30, ...p);
const set = (...p: Uint8Array[]) => der(0x31, ...p);
const utf8 = (s: string) => der(0x0c, Buffer.from(s, 'utf8'));
const OID_CN = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);
const OID_O = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x0a]);
/** ecdsa-with-SHA256, 1.2.840.10045.4.3.2 (parameters absent, RFC 5758). */
const ECDSA_SHA256 = seq(Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));

export function pem(label: string, derBytes: Uint8Array): string {
  const b64 = Buffer.from(derBytes).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** `key` is the private key (the request is signed with it). */
export function kubeletCsr(nodeName: string, key: KeyObject): string {
  const subject = seq(set(seq(OID_O, utf8('system:nodes'))), set(seq(OID_CN, utf8(`system:node:${nodeName}`))));
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const info = seq(der(0x02, Buffer.from([0])), subject, spki, der(0xa0));
  const signature = sign('sha256', info, key); // DER ECDSA-Sig-Value for EC keys
  return pem('CERTIFICATE REQUEST', seq(info, ECDSA_SHA256, der(0x03, Buffer.from([0]), signature)));
}

/** A fresh key pair and its CSR; `keyPem` is a Buffer so the caller can zeroize it. */
export function newKubeletKey(nodeName: string): { csrPem: string; keyPem: Buffer } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const csrPem = kubeletCsr(nodeName, privateKey);
  const keyPem = Buffer.from(privateKey.export({ type: 'sec1', format: 'pem' }) as string, 'utf8');
  return { csrPem, keyPem };
}
