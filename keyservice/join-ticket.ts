import { randomBytes, randomInt, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hash, toHex } from '../lib/bytes.js';
import { SextantError } from '../lib/errors.js';
import { run, type ExecLogger } from '../lib/exec.js';
import type { JoinTicket } from '../protocol/messages.js';
import { registerBootstrapToken } from './token-sink.js';

/**
 * What a node needs for `kubeadm join`: the API server endpoint, a bootstrap token, the
 * discovery hash of the cluster CA and (from the node's CSR) a kubelet client certificate
 * signed by the cluster CA with `openssl x509 -req`.
 */

export interface ClusterCa {
  certPem: string;
  /** Path of the CA key (it stays in its file; openssl reads it). */
  keyFile: string;
}

export interface JoinConfig {
  apiServerEndpoint: string;
  tokenTtlSeconds: number;
  ca: ClusterCa;
  certDays: number;
  /** Registers each new bootstrap token with the cluster (keyservice/token-sink.ts); absent: the operator does it. */
  tokenCommand?: string;
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

function randomString(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return s;
}

/** kubeadm bootstrap token `[a-z0-9]{6}.[a-z0-9]{16}`. */
export function newBootstrapToken(): string {
  return `${randomString(6)}.${randomString(16)}`;
}

/** kubeadm's --discovery-token-ca-cert-hash: `sha256:` + hex SHA-256 of the CA's SubjectPublicKeyInfo DER. */
export function caCertHash(caCertPem: string): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(caCertPem);
  } catch (cause) {
    throw new SextantError({ code: 'CONFIG_INVALID', message: 'cluster CA certificate is not PEM X.509', cause });
  }
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return 'sha256:' + toHex(hash('sha256', spki));
}

/** Signs the node's CSR as `system:node:<nodeName>` in group `system:nodes`, client auth only. */
export async function issueKubeletCert(ca: ClusterCa, csrPem: string, nodeName: string, days: number, log?: ExecLogger): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-csr-'));
  try {
    const csr = path.join(dir, 'node.csr');
    const caCert = path.join(dir, 'ca.pem');
    const ext = path.join(dir, 'ext.cnf');
    await writeFile(csr, csrPem);
    await writeFile(caCert, ca.certPem);
    await writeFile(ext, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
    // OpenSSL 3.0's `req -verify` exits 0 on a bad self-signature ("verify failure"): only
    // its "verify OK" line counts as verified.
    let verified = false;
    try {
      const r = await run('openssl', ['req', '-verify', '-noout', '-in', csr], { log });
      verified = /self-signature verify OK/.test(`${r.stdout}\n${r.stderr}`);
    } catch {
      verified = false;
    }
    if (!verified) throw new SextantError({ code: 'PROTOCOL_INVALID', message: 'the CSR does not verify (bad signature or not PKCS#10)' });
    const out = path.join(dir, 'node.crt');
    await run(
      'openssl',
      ['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', ca.keyFile, '-set_serial', '0x' + toHex(randomBytes(16)).replace(/^[89a-f]/, '1'),
        '-days', String(days), '-sha256', '-subj', `/O=system:nodes/CN=system:node:${nodeName}`, '-extfile', ext, '-out', out],
      { log },
    );
    return await readFile(out, 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function makeJoinTicket(cfg: JoinConfig, nodeName: string, csrPem: string | undefined, now: Date, log?: ExecLogger): Promise<JoinTicket> {
  const token = newBootstrapToken();
  const tokenExpiresAt = new Date(now.getTime() + cfg.tokenTtlSeconds * 1000).toISOString();
  if (cfg.tokenCommand) await registerBootstrapToken(cfg.tokenCommand, { token, expiresAt: tokenExpiresAt, ttlSeconds: cfg.tokenTtlSeconds, nodeName }, log);
  return {
    apiServerEndpoint: cfg.apiServerEndpoint,
    token,
    tokenExpiresAt,
    caCertHash: caCertHash(cfg.ca.certPem),
    caCert: cfg.ca.certPem,
    kubeletCert: csrPem ? await issueKubeletCert(cfg.ca, csrPem, nodeName, cfg.certDays, log) : undefined,
  };
}
