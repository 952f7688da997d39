/**
 * Kubelet certificate issuance per join: in process (keyservice/kubelet-cert.ts, the CA key
 * imported once) against the baseline it replaced, measured in the same run: a temp dir and
 * two `openssl` processes per join (`req -verify`, then `x509 -req`). CPU counts the
 * children's (openssl) CPU too: /proc/self/stat cutime + cstime.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ClusterCa } from '../../keyservice/kubelet-cert.js';
import { run } from '../../lib/exec.js';

/** This process's CPU plus that of its waited-for children, in seconds. */
async function cpuWithChildren(): Promise<number> {
  const fields = (await readFile('/proc/self/stat', 'utf8')).replace(/^.*\) /, '').split(' ');
  const tick = 100; // USER_HZ on Linux
  const children = (Number(fields[13]) + Number(fields[14])) / tick; // cutime, cstime (fields 16, 17)
  const self = process.cpuUsage();
  return children + (self.user + self.system) / 1e6;
}

async function opensslJoin(caCert: string, caKey: string, csrPem: string, nodeName: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-csr-'));
  try {
    const csr = path.join(dir, 'node.csr');
    const ext = path.join(dir, 'ext.cnf');
    await writeFile(csr, csrPem);
    await writeFile(ext, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
    await run('openssl', ['req', '-verify', '-noout', '-in', csr]);
    const out = path.join(dir, 'node.crt');
    await run('openssl', ['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', '0x1' + randomBytes(15).toString('hex'), '-days', '1', '-sha256', '-subj', `/O=system:nodes/CN=system:node:${nodeName}`, '-extfile', ext, '-out', out]);
    return await readFile(out, 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface JoinCertFigures {
  inProcessPerCpuSecond: number;
  opensslPerCpuSecond: number;
}

/** Joins per CPU-second both ways, with an RSA 2048 cluster CA (kubeadm's default) and an EC P-256 node CSR. */
export async function joinCertRates(n = 200, baselineN = 30): Promise<JoinCertFigures> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'join-bench-'));
  try {
    const caKey = path.join(dir, 'ca.key');
    const caCert = path.join(dir, 'ca.crt');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', caCert, '-subj', '/CN=kubernetes', '-days', '2']);
    await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'n.key'), '-out', path.join(dir, 'n.csr'), '-subj', '/CN=n']);
    const csr = await readFile(path.join(dir, 'n.csr'), 'utf8');
    const ca = await ClusterCa.load(caCert, caKey);
    for (let i = 0; i < 10; i++) await ca.issueKubeletCert(csr, 'bench', 1, new Date());
    let c0 = await cpuWithChildren();
    for (let i = 0; i < n; i++) await ca.issueKubeletCert(csr, 'bench', 1, new Date());
    const inProcess = n / ((await cpuWithChildren()) - c0);
    c0 = await cpuWithChildren();
    for (let i = 0; i < baselineN; i++) await opensslJoin(caCert, caKey, csr, 'bench');
    const openssl = baselineN / ((await cpuWithChildren()) - c0);
    return { inProcessPerCpuSecond: inProcess, opensslPerCpuSecond: openssl };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
