import { fail, isSextantError } from '../../lib/errors.js';
import { LUKS_FORMAT_ARGS, TOKEN_ID, TOKEN_TYPE } from './constants.js';
import type { Runner } from './runner.js';
import type { ExecLogger } from '../../lib/exec.js';

/**
 * The cryptsetup calls the state disk needs. The key only ever travels on stdin
 * (`--key-file -`): never an argument, never a file.
 */
export interface CryptsetupCtx {
  runner: Runner;
  log?: ExecLogger;
}

/** What sextant records in its LUKS2 token; `filesystem` journals the mkfs step. */
export interface SextantTokenState {
  filesystem: 'pending' | 'ext4';
}

export function tokenJson(state: SextantTokenState): string {
  return JSON.stringify({ type: TOKEN_TYPE, keyslots: [], version: 1, filesystem: state.filesystem });
}

export async function luksFormat(ctx: CryptsetupCtx, device: string, key: Uint8Array): Promise<void> {
  await ctx.runner('cryptsetup', [...LUKS_FORMAT_ARGS, device], { input: key, log: ctx.log });
}

export async function luksDumpJson(ctx: CryptsetupCtx, device: string): Promise<string> {
  return (await ctx.runner('cryptsetup', ['luksDump', '--dump-json-metadata', device], { log: ctx.log })).stdout;
}

/** Writes (or replaces) sextant's token; LUKS2 writes both header copies, so a crash leaves one valid. */
export async function writeToken(ctx: CryptsetupCtx, device: string, state: SextantTokenState, replace: boolean): Promise<void> {
  const args = ['token', 'import', '--token-id', String(TOKEN_ID), ...(replace ? ['--token-replace'] : []), '--json-file', '-', device];
  await ctx.runner('cryptsetup', args, { input: tokenJson(state), log: ctx.log });
}

/** True when `key` opens a keyslot; exit 2 is cryptsetup's "no key available with this passphrase". */
export async function keyOpensHeader(ctx: CryptsetupCtx, device: string, key: Uint8Array): Promise<boolean> {
  const r = await ctx.runner(
    'cryptsetup',
    ['open', '--test-passphrase', '--disable-external-tokens', '--key-file', '-', device],
    { input: key, log: ctx.log, okExitCodes: [2] },
  );
  return r.exitCode === 0;
}

/** Opens the device-mapper mapping unless it is already active on this device. */
export async function openMapping(ctx: CryptsetupCtx, device: string, name: string, key: Uint8Array): Promise<string> {
  const mapper = `/dev/mapper/${name}`;
  const status = await ctx.runner('cryptsetup', ['status', name], { log: ctx.log, okExitCodes: [4] });
  if (status.exitCode === 0) {
    const m = /^\s*device:\s*(\S+)/m.exec(status.stdout);
    if (!m || m[1] !== device) fail('DISK_STEP_FAILED', `${mapper} is already active on ${m?.[1] ?? 'an unknown device'}, not ${device}`);
    return mapper;
  }
  try {
    await ctx.runner('cryptsetup', ['open', '--type', 'luks2', '--disable-external-tokens', '--key-file', '-', device, name], {
      input: key,
      log: ctx.log,
    });
  } catch (e) {
    if (isSextantError(e)) fail('DISK_STEP_FAILED', `cryptsetup open failed: ${e.message}`, e);
    throw e;
  }
  return mapper;
}
