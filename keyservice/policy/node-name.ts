import { SextantError } from '../../lib/errors.js';

/**
 * The node name a node asks for becomes the identity in its kubelet certificate
 * (`system:node:<name>`), and the name usually comes from the host (DHCP, cloud metadata), not
 * from the measured image. With a node inventory (EK certificate SHA-256 -> node name) the
 * name is bound to the TPM: an unknown EK is NODE_UNKNOWN, another name NODE_NAME_MISMATCH.
 * Without an inventory any DNS-1123 name is accepted (the previous behaviour).
 */
export type NodeInventory = ReadonlyMap<string, string>;

export function checkNodeName(inventory: NodeInventory | undefined, ekCertSha256: string, nodeName: string): void {
  if (!inventory) return;
  const want = inventory.get(ekCertSha256);
  if (want === undefined) throw new SextantError({ code: 'NODE_UNKNOWN', message: `no node in the inventory has this EK certificate (sha256 ${ekCertSha256})` });
  if (want !== nodeName) throw new SextantError({ code: 'NODE_NAME_MISMATCH', message: `this TPM belongs to node "${want}", not "${nodeName}"` });
}

/** Parses the inventory file: `{"<hex SHA-256 of the DER EK certificate>": "<node name>", ...}`. */
export function parseNodeInventory(json: string, file: string): NodeInventory {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (cause) {
    throw new SextantError({ code: 'CONFIG_INVALID', message: `${file} is not JSON`, cause });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SextantError({ code: 'CONFIG_INVALID', message: `${file}: expected {ekCertSha256: nodeName}` });
  const bad = Object.entries(raw).filter(([k, v]) => !/^[0-9a-f]{64}$/.test(k) || typeof v !== 'string' || !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(v));
  if (bad.length) throw new SextantError({ code: 'CONFIG_INVALID', message: `${file}: entries must be "<64 lowercase hex>": "<DNS-1123 name>"; bad: ${bad.map(([k]) => k).join(', ')}` });
  return new Map(Object.entries(raw as Record<string, string>));
}
