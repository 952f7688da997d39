/**
 * Which TPM to talk to, as a tpm2-tss TCTI loader string `NAME[:CONFIG]`:
 * `device:/dev/tpmrm0` on a node (the kernel resource manager), `swtpm:host=127.0.0.1,port=N`
 * for a software TPM in tests. Tss2_TctiLdr_Initialize loads `libtss2-tcti-NAME.so.0`.
 */
import { SextantError } from '../../lib/errors.js';

export const DEFAULT_TCTI = 'device:/dev/tpmrm0';
export const TCTI_ENV = 'SEXTANT_TCTI';

/** The TCTI to use: an explicit one, else $SEXTANT_TCTI, else the kernel resource manager. */
export function resolveTcti(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = explicit ?? (env[TCTI_ENV] || undefined) ?? DEFAULT_TCTI;
  return validateTcti(chosen);
}

export function validateTcti(tcti: string): string {
  // The name becomes part of a library file name: keep it to what tpm2-tss ships.
  if (!/^[a-z][a-z0-9-]*(:[\x20-\x7e]*)?$/.test(tcti)) {
    throw new SextantError({
      code: 'INVALID_ARGUMENT',
      message: `bad TCTI "${tcti}" (expected e.g. ${DEFAULT_TCTI} or swtpm:host=127.0.0.1,port=2321)`,
    });
  }
  return tcti;
}

/** The swtpm TCTI string for a software TPM listening on the loopback. */
export function swtpmTcti(port: number, host = '127.0.0.1'): string {
  return `swtpm:host=${host},port=${port}`;
}
