import { mkdir, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { zeroize } from '../../lib/bytes.js';
import { writeFileAtomic } from '../../lib/write-file-atomic.js';

export const KUBELET_CURRENT = 'kubelet-client-current.pem';

/**
 * Installs the kubelet client certificate the key service issued (with the key the agent
 * generated for its CSR) in the kubelet's own certificate store, the way the kubelet's
 * certificate manager writes it: `<cert-dir>/kubelet-client-<time>.pem` holding the
 * certificate then the key (0600), and the symlink `kubelet-client-current.pem` to it.
 *
 * Why there: after `kubeadm join`, /etc/kubernetes/kubelet.conf names
 * /var/lib/kubelet/pki/kubelet-client-current.pem as the kubelet's client certificate and
 * key. The kubelet's bootstrap finds a valid certificate in that store and uses it instead
 * of filing a CSR with the bootstrap token, so the node's API identity is the one the key
 * service issued after attestation (no CSR approver needed), and on a rejoin an expired
 * certificate is replaced before the kubelet starts. /var/lib/kubelet is bind-mounted from
 * the encrypted state disk, so the key is never stored unencrypted.
 */
export async function installKubeletCert(certDir: string, certPem: string, keyPem: Uint8Array, now: Date): Promise<string> {
  await mkdir(certDir, { recursive: true, mode: 0o700 });
  const stamp = now.toISOString().replace(/\.\d+Z$/, '').replace(/[T:]/g, '-');
  const file = path.join(certDir, `kubelet-client-${stamp}.pem`);
  const body = Buffer.concat([Buffer.from(certPem.endsWith('\n') ? certPem : certPem + '\n', 'utf8'), keyPem]);
  try {
    await writeFileAtomic(file, body, 0o600);
  } finally {
    zeroize(body);
  }
  const current = path.join(certDir, KUBELET_CURRENT);
  const tmp = `${current}.tmp-${process.pid}`;
  await rm(tmp, { force: true });
  await symlink(path.basename(file), tmp);
  await rename(tmp, current);
  return current;
}
