import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { ClusterCa } from '../../keyservice/kubelet-cert.js';

const NEWKEY = { ec: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], rsa: ['-newkey', 'rsa:2048'] } as const;

/** A throwaway cluster CA (EC P-256 unless asked for RSA 2048, kubeadm's default) and a node key + CSR, made with openssl. */
export async function makeClusterCa(dir: string, caKeyType: keyof typeof NEWKEY = 'ec') {
  const caKey = path.join(dir, 'ca.key');
  const caCert = path.join(dir, 'ca.crt');
  await run('openssl', ['req', '-x509', ...NEWKEY[caKeyType], '-nodes', '-keyout', caKey, '-out', caCert, '-subj', '/CN=kubernetes', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const nodeKey = path.join(dir, 'node.key');
  await run('openssl', ['req', '-new', ...NEWKEY.ec, '-nodes', '-keyout', nodeKey, '-out', path.join(dir, 'node.csr'), '-subj', '/CN=whatever/O=system:masters']);
  return { caKey, caCert, csr: await readFile(path.join(dir, 'node.csr'), 'utf8'), load: () => ClusterCa.load(caCert, caKey) };
}
