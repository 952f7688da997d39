/**
 * A node's TPM: a real TPM 2.0 (swtpm) provisioned by swtpm_setup with EK and platform
 * certificates that swtpm_localca issues from a test CA (root -> EK issuer) of our own, and
 * one swtpm process per boot serving QEMU's tpm-emulator backend on a unix socket.
 * Nothing touches /var/lib/swtpm-localca.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../lib/exec.js';

export type Log = (line: string) => void;

/** An EK CA: a self-signed root and the issuer whose key swtpm_localca signs EK certificates with. */
export interface EkCa {
  dir: string;
  rootCert: string;
  issuerCert: string;
}

/**
 * A two-level CA (root -> EK issuer), EC P-256 so it takes milliseconds: swtpm_localca
 * would otherwise generate two RSA-3072 keys (seconds on a loaded machine). Reused when `dir`
 * already holds one, so every node of a mini cluster chains to the same root.
 */
export async function ensureEkCa(dir: string, log?: Log): Promise<EkCa> {
  const ca: EkCa = { dir, rootCert: path.join(dir, 'root.pem'), issuerCert: path.join(dir, 'issuercert.pem') };
  if (existsSync(ca.issuerCert) && existsSync(path.join(dir, 'signkey.pem'))) return ca;
  await mkdir(dir, { recursive: true });
  const ext = path.join(dir, 'ca.ext');
  await writeFile(ext, 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', ['req', '-x509', ...newKey, '-keyout', `${dir}/root.key`, '-out', ca.rootCert, '-days', '30',
    '-subj', '/CN=sextant test EK root CA', '-addext', 'basicConstraints=critical,CA:true', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { log });
  await run('openssl', ['req', ...newKey, '-keyout', `${dir}/signkey.pem`, '-out', `${dir}/issuer.csr`, '-subj', '/CN=sextant test EK issuer'], { log });
  await run('openssl', ['x509', '-req', '-in', `${dir}/issuer.csr`, '-CA', ca.rootCert, '-CAkey', `${dir}/root.key`, '-set_serial', '1',
    '-days', '30', '-extfile', ext, '-out', ca.issuerCert], { log });
  await writeFile(path.join(dir, 'certserial'), '2\n');
  return ca;
}

async function writeConfigs(dir: string, ca: string, pcrBanks: string[]): Promise<string> {
  await writeFile(
    path.join(dir, 'swtpm-localca.conf'),
    [`statedir = ${ca}`, `signingkey = ${ca}/signkey.pem`, `issuercert = ${ca}/issuercert.pem`, `certserial = ${ca}/certserial`, ''].join('\n'),
  );
  await writeFile(path.join(dir, 'swtpm-localca.options'), ['--platform-manufacturer sextant', '--platform-version 2.1', '--platform-model swtpm', ''].join('\n'));
  const setupConf = path.join(dir, 'swtpm_setup.conf');
  await writeFile(
    setupConf,
    [
      'create_certs_tool = /usr/bin/swtpm_localca',
      `create_certs_tool_config = ${dir}/swtpm-localca.conf`,
      `create_certs_tool_options = ${dir}/swtpm-localca.options`,
      `active_pcr_banks = ${pcrBanks.join(',')}`,
      '',
    ].join('\n'),
  );
  return setupConf;
}

/** The files `provisionSwtpm` leaves in its directory. */
export interface ProvisionedTpm {
  dir: string;
  /** The TPM's persistent state (EK, NV with the EK certificate): reuse it to boot the same "machine" again. */
  stateDir: string;
  caCertPath: string;
  issuerCertPath: string;
}

/**
 * Creates a TPM state in `dir`/state with EK (and platform) certificates issued by a test CA:
 * `ca` when given (shared by several machines), else a new one in `dir`/ca.
 */
export async function provisionSwtpm(dir: string, opts: { pcrBanks?: string[]; ca?: EkCa; log?: Log } = {}): Promise<ProvisionedTpm> {
  const pcrBanks = opts.pcrBanks ?? ['sha1', 'sha256'];
  const stateDir = path.join(dir, 'state');
  await mkdir(stateDir, { recursive: true });
  const ca = opts.ca ?? (await ensureEkCa(path.join(dir, 'ca'), opts.log));
  const setupConf = await writeConfigs(dir, ca.dir, pcrBanks);
  await run(
    'swtpm_setup',
    ['--tpm2', '--tpmstate', stateDir, '--create-ek-cert', '--create-platform-cert', '--pcr-banks', pcrBanks.join(','), '--config', setupConf],
    { log: opts.log, timeoutMs: 60_000 },
  );
  return { dir, stateDir, caCertPath: ca.rootCert, issuerCertPath: ca.issuerCert };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL if the process has not exited within 5 s. */
export async function killAndWait(pid: number): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

/** A swtpm serving one QEMU VM through a unix control socket (QEMU's tpm emulator backend). */
export interface VmSwtpm {
  pid: number;
  /** The control socket for `-chardev socket,path=...`. */
  socket: string;
  stop(): Promise<void>;
}

/**
 * Starts swtpm (a daemon: it outlives its caller) on `stateDir` (from provisionSwtpm) for one
 * boot: a machine rebooted with the same state keeps its EK, and its PCRs start from reset as
 * on real hardware. Its command line names `stateDir`, which identifies it later.
 */
export async function startSwtpmForVm(stateDir: string, runDir: string, log?: Log): Promise<VmSwtpm> {
  const socket = path.join(runDir, 'swtpm.sock');
  const pidFile = path.join(runDir, 'swtpm-vm.pid');
  await rm(pidFile, { force: true });
  await run(
    'swtpm',
    ['socket', '--tpm2', '--tpmstate', `dir=${stateDir}`, '--ctrl', `type=unixio,path=${socket}`, '--flags', 'startup-clear', '--pid', `file=${pidFile}`, '--daemon'],
    { log, timeoutMs: 30_000 },
  );
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  return { pid, socket, stop: () => killAndWait(pid) };
}
