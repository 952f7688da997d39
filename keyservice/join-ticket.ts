import { randomInt } from 'node:crypto';
import type { ExecLogger } from '../lib/exec.js';
import type { JoinTicket } from '../protocol/messages.js';
import type { ClusterCa } from './kubelet-cert.js';
import { registerBootstrapToken } from './token-sink.js';

/**
 * What a node needs for `kubeadm join`: the API server endpoint, a bootstrap token, the
 * discovery hash of the cluster CA and (from the node's CSR) a kubelet client certificate
 * signed by the cluster CA (keyservice/kubelet-cert.ts, in process).
 */

export interface JoinConfig {
  apiServerEndpoint: string;
  tokenTtlSeconds: number;
  /** Loaded once at start (ClusterCa.load): its hash is computed then, its key imported then. */
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

export async function makeJoinTicket(cfg: JoinConfig, nodeName: string, csrPem: string | undefined, now: Date, log?: ExecLogger): Promise<JoinTicket> {
  const token = newBootstrapToken();
  const tokenExpiresAt = new Date(now.getTime() + cfg.tokenTtlSeconds * 1000).toISOString();
  if (cfg.tokenCommand) await registerBootstrapToken(cfg.tokenCommand, { token, expiresAt: tokenExpiresAt, ttlSeconds: cfg.tokenTtlSeconds, nodeName }, log);
  return {
    apiServerEndpoint: cfg.apiServerEndpoint,
    token,
    tokenExpiresAt,
    caCertHash: cfg.ca.caCertHash,
    caCert: cfg.ca.certPem,
    kubeletCert: csrPem ? await cfg.ca.issueKubeletCert(csrPem, nodeName, cfg.certDays, now) : undefined,
  };
}
