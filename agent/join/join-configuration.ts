import { mkdir, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { fail } from '../../lib/errors.js';
import type { JoinTicket } from '../../protocol/messages.js';

/** kubeadm.k8s.io/v1beta4 JoinConfiguration, the fields sextant sets. */
export interface JoinConfigurationV1beta4 {
  apiVersion: 'kubeadm.k8s.io/v1beta4';
  kind: 'JoinConfiguration';
  discovery: { bootstrapToken: { apiServerEndpoint: string; token: string; caCertHashes: string[] } };
  nodeRegistration: { name: string; criSocket: string; kubeletExtraArgs: { name: string; value: string }[] };
  controlPlane?: { localAPIEndpoint?: { advertiseAddress: string; bindPort: number } };
}

export interface JoinNode {
  name: string;
  criSocket: string;
  kubeletExtraArgs: Record<string, string>;
  role: 'worker' | 'control-plane';
  advertiseAddress?: string;
}

export function joinConfiguration(ticket: JoinTicket, node: JoinNode): JoinConfigurationV1beta4 {
  if (!/^[a-z0-9]{6}\.[a-z0-9]{16}$/.test(ticket.token)) fail('PROTOCOL_INVALID', 'join ticket token is not a kubeadm bootstrap token');
  if (!/^sha256:[0-9a-f]{64}$/.test(ticket.caCertHash)) fail('PROTOCOL_INVALID', 'join ticket caCertHash is not sha256:<hex>');
  const cfg: JoinConfigurationV1beta4 = {
    apiVersion: 'kubeadm.k8s.io/v1beta4',
    kind: 'JoinConfiguration',
    discovery: { bootstrapToken: { apiServerEndpoint: ticket.apiServerEndpoint, token: ticket.token, caCertHashes: [ticket.caCertHash] } },
    nodeRegistration: {
      name: node.name,
      criSocket: node.criSocket,
      // v1beta4 turned extra args from a map into an ordered list of {name, value}.
      kubeletExtraArgs: Object.entries(node.kubeletExtraArgs).sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, value]) => ({ name, value })),
    },
  };
  if (node.role === 'control-plane') {
    cfg.controlPlane = node.advertiseAddress ? { localAPIEndpoint: { advertiseAddress: node.advertiseAddress, bindPort: 6443 } } : {};
  }
  return cfg;
}

/**
 * Writes the configuration (JSON, which kubeadm's YAML reader accepts as-is) atomically and
 * readable by root only: it carries the bootstrap token.
 */
export async function writeJoinConfiguration(file: string, cfg: JoinConfigurationV1beta4): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}
