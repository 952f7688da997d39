import { SextantError } from '../../lib/errors.js';
import type { SecureBootState } from '../../measurements/secureboot/predict.js';
import { str, type OptionSpec, type OptionValues } from '../command.js';

/**
 * The Secure Boot options of the prediction commands, apart from cli/commands/secureboot.ts so
 * that `sextant measure uki` without them does not load the signing and key-folder code (about
 * 30 ms of a 350 ms CLI run).
 */
export const SECURE_BOOT_OPTIONS: Record<string, OptionSpec> = {
  'sb-keys': { type: 'string', valueName: 'DIR', description: 'Secure Boot on with the key folder DIR (PK/, KEK/, db/, dbx/): also predict PCR 7' },
  'ovmf-vars': { type: 'string', valueName: 'VARS.fd', description: 'the firmware\'s OVMF variable store (Secure Boot on or off as it says): also predict PCR 7' },
};

/** The Secure Boot state the options name, or undefined when PCR 7 is not asked for. */
export async function secureBootFromOptions(v: OptionValues): Promise<SecureBootState | undefined> {
  const keysDir = str(v, 'sb-keys');
  const varsFile = str(v, 'ovmf-vars');
  if (keysDir && varsFile) throw new SextantError({ code: 'USAGE', message: '--sb-keys and --ovmf-vars both name the key databases: give one' });
  if (!keysDir && !varsFile) return undefined;
  const { loadSecureBootState } = await import('../../measurements/secureboot/predict.js');
  return loadSecureBootState(keysDir ? { keysDir } : { varsFile: varsFile! });
}
