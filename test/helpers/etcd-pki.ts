import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../lib/exec.js';

/**
 * A throwaway PKI for etcd over TLS, made by openssl in DIR: a CA, etcd's server certificate
 * (SAN IP:127.0.0.1 and localhost), a client certificate signed by the same CA (what
 * `--client-cert-auth` accepts), and a second, unrelated CA with its own client certificate
 * (the "wrong CA" of the failure tests). EC P-256, valid for 2 days.
 */

export interface EtcdPki {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCa: string;
  otherClientCert: string;
  otherClientKey: string;
}

const NEWKEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}-key.pem`);
  await run('openssl', ['req', '-x509', ...NEWKEY, '-keyout', key, '-out', cert, '-subj', `/CN=${name}`, '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { cert, key };
}

async function issue(dir: string, ca: { cert: string; key: string }, name: string, ext: string[]): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}-key.pem`);
  const csr = path.join(dir, `${name}.csr`);
  const extFile = path.join(dir, `${name}.ext`);
  await run('openssl', ['req', '-new', ...NEWKEY, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  await writeFile(extFile, ext.join('\n') + '\n');
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', extFile]);
  return { cert, key };
}

export async function makeEtcdPki(dir: string): Promise<EtcdPki> {
  const ca = await makeCa(dir, 'etcd-ca');
  const other = await makeCa(dir, 'other-ca');
  const server = await issue(dir, ca, 'etcd-server', ['basicConstraints=CA:FALSE', 'keyUsage=digitalSignature', 'extendedKeyUsage=serverAuth,clientAuth', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
  const client = await issue(dir, ca, 'etcd-client', ['basicConstraints=CA:FALSE', 'keyUsage=digitalSignature', 'extendedKeyUsage=clientAuth']);
  const otherClient = await issue(dir, other, 'other-client', ['basicConstraints=CA:FALSE', 'keyUsage=digitalSignature', 'extendedKeyUsage=clientAuth']);
  return { ca: ca.cert, serverCert: server.cert, serverKey: server.key, clientCert: client.cert, clientKey: client.key, otherCa: other.cert, otherClientCert: otherClient.cert, otherClientKey: otherClient.key };
}
