/**
 * A real software TPM (swtpm) per test file: provisioned by swtpm_setup with EK certificates
 * issued by swtpm_localca from a test CA that lives in the same temporary directory (nothing
 * touches /var/lib/swtpm-localca), listening on loopback ports, stopped by its PID.
 * Each swtpm is provisioned from scratch (~1.5 s): copying one template state would give
 * every test file the same endorsement seed, and credential-activation tests need two TPMs
 * that really differ.
 *
 *   const tpm = useSwtpm(test);            // before/after.always hooks
 *   test('...', async (t) => { tpm().tcti ... });
 */
import { createServer } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestFn } from 'ava';
import { run } from '../../lib/exec.js';
import { alive, killAndWait, provisionSwtpm, startSwtpmForVm as startVmSwtpm, type VmSwtpm } from '../../mini/swtpm.js';

export interface SwtpmOptions {
  /** PCR banks to allocate (default sha1 + sha256, like most hardware TPMs). */
  pcrBanks?: string[];
  log?: (line: string) => void;
}

export interface Swtpm {
  /** TCTI string for tpm2-tss (the engine, tpm2-tools' -T / TPM2TOOLS_TCTI). */
  tcti: string;
  port: number;
  dir: string;
  pid: number;
  /** The local CA's self-signed root: trust anchor for the EK certificate. */
  caCertPath: string;
  /** The intermediate CA whose key swtpm_localca signed the EK certificate with (root -> issuer -> EK). */
  issuerCertPath: string;
  /** Environment for tpm2-tools processes talking to this TPM. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

const running = new Set<Swtpm>();

/** Two consecutive free loopback ports (server, control), found by letting the kernel pick. */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await listenOnce(0);
    if (port < 65535 && (await listenOnce(port + 1).then(() => true, () => false))) return port;
  }
  throw new Error('swtpm harness: no free pair of loopback ports');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

export { provisionSwtpm, killAndWait, type ProvisionedTpm, type VmSwtpm } from '../../mini/swtpm.js';

/** Provisions and starts a fresh swtpm; `stop()` (or the test hooks) remove every trace. */
export async function startSwtpm(opts: SwtpmOptions = {}): Promise<Swtpm> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-swtpm-'));
  const pidFile = path.join(dir, 'swtpm.pid');
  try {
    const { stateDir } = await provisionSwtpm(dir, opts);
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePortPair();
      try {
        await run(
          'swtpm',
          [
            'socket', '--tpm2',
            '--tpmstate', `dir=${stateDir}`,
            '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
            '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
            '--flags', 'startup-clear',
            '--pid', `file=${pidFile}`,
            '--daemon',
          ],
          { log: opts.log, timeoutMs: 30_000 },
        );
      } catch (e) {
        // Another process took the port between our probe and swtpm's bind: pick again.
        lastError = e;
        continue;
      }
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      const tcti = `swtpm:host=127.0.0.1,port=${port}`;
      const tpm: Swtpm = {
        tcti,
        port,
        dir,
        pid,
        caCertPath: path.join(dir, 'ca', 'root.pem'),
        issuerCertPath: path.join(dir, 'ca', 'issuercert.pem'),
        env: { TPM2TOOLS_TCTI: tcti, SEXTANT_TCTI: tcti },
        stop: async () => {
          running.delete(tpm);
          await killAndWait(pid);
          await rm(dir, { recursive: true, force: true });
        },
      };
      running.add(tpm);
      return tpm;
    }
    throw lastError;
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

const vmSwtpms = new Set<number>();

/** mini/swtpm.ts's startSwtpmForVm, and the daemon is killed if the test process exits without its hooks. */
export async function startSwtpmForVm(stateDir: string, runDir: string, log?: (line: string) => void): Promise<VmSwtpm> {
  const vm = await startVmSwtpm(stateDir, runDir, log);
  vmSwtpms.add(vm.pid);
  return { ...vm, stop: () => vm.stop().finally(() => vmSwtpms.delete(vm.pid)) };
}

// A test process that exits without running its hooks still takes its swtpm daemons along.
process.once('exit', () => {
  for (const pid of vmSwtpms) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const t of running) {
    try {
      if (alive(t.pid)) process.kill(t.pid, 'SIGKILL');
      rmSync(t.dir, { recursive: true, force: true });
    } catch {
      /* already gone */
    }
  }
});

/** Starts one swtpm for the test file (test.before) and stops it (test.after.always). */
export function useSwtpm(test: TestFn, opts: SwtpmOptions = {}): () => Swtpm {
  let tpm: Swtpm | undefined;
  test.before(async () => {
    tpm = await startSwtpm(opts);
  });
  test.after.always(async () => {
    await tpm?.stop();
  });
  return () => {
    if (!tpm) throw new Error('swtpm harness: the swtpm did not start (see the before hook)');
    return tpm;
  };
}

/**
 * A power cycle as a reboot sees it: swtpm's control channel re-initializes the TPM
 * (CMD_INIT), then TPM2_Startup(CLEAR) as firmware sends it (swtpm's `startup-clear` flag
 * only applies when the process starts): every PCR is reset, resetCount goes up, persistent
 * state (seeds, NV, the EK certificate) stays. Close open TPM connections first.
 */
export async function rebootSwtpm(tpm: Swtpm): Promise<void> {
  await run('swtpm_ioctl', ['--tcp', `127.0.0.1:${tpm.port + 1}`, '-i'], { timeoutMs: 30_000 });
  await run('tpm2_startup', ['-c'], { env: tpm.env, timeoutMs: 30_000 });
}
