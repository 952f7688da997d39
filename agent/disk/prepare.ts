import { fail } from '../../lib/errors.js';
import type { ExecLogger } from '../../lib/exec.js';
import { probeSignature } from './blkid.js';
import { classifyDisk, type DiskVerdict } from './classify.js';
import { BLANK_HEAD_BYTES, BLANK_TAIL_BYTES } from './constants.js';
import { luksFormat, openMapping, writeToken, type CryptsetupCtx } from './cryptsetup.js';
import { keyOpensDisk } from './header-copy.js';
import { headFingerprint } from './device-bytes.js';
import { ensureFilesystem, ensureMounted } from './filesystem.js';
import { inspectDisk, type DiskFacts } from './inspect.js';
import type { ResetAuthorizer } from './reset.js';
import { defaultRunner, type Runner } from './runner.js';

export interface PrepareOptions {
  device: string;
  /** The disk key (from the key service). Not zeroed here: the caller owns it and zeroes it. */
  key: Uint8Array;
  /** false: stop before device-mapper (open, mkfs, mount), e.g. on hosts without dm. */
  open: boolean;
  mapperName?: string;
  mountpoint?: string;
  runner?: Runner;
  log?: ExecLogger;
  reset?: ResetAuthorizer;
}

/** What happened, step by step, in the order it happened. */
export type PrepareStep =
  | 'formatted'
  | 'reformatted-unfinished'
  | 'reset-wiped'
  | 'token-written'
  | 'header-verified'
  | 'key-verified'
  | 'opened'
  | 'mkfs'
  | 'filesystem-recorded'
  | 'mounted';

export interface PrepareResult {
  device: string;
  /** What the disk was when this run started. */
  found: 'blank' | 'sextant' | 'sextant-unfinished' | 'reset';
  steps: PrepareStep[];
  luksUuid?: string;
  mapper?: string;
  mountpoint?: string;
}

export const DEFAULT_MAPPER_NAME = 'sextant-state';
export const DEFAULT_MOUNTPOINT = '/var/lib/sextant-state';

/**
 * The state-disk step: format a blank disk, or verify sextant's own header and key; then
 * (unless `open` is false) open, create the filesystem once, and mount. Every branch is
 * decided from what is on the disk now, so a run after a crash at any point converges.
 * Refusals never write: DISK_FOREIGN_DATA, DISK_HEADER_REJECTED, DISK_HEADER_DAMAGED,
 * DISK_UNALIGNED, DISK_WRONG_KEY. Until the key has opened the header (tested on a read-only
 * copy), no tool gets the device writable: only blank disks are formatted before that.
 */
export async function prepareStateDisk(opts: PrepareOptions): Promise<PrepareResult> {
  const runner = opts.runner ?? defaultRunner;
  const cs: CryptsetupCtx = { runner, log: opts.log };
  const dev = opts.device;
  const steps: PrepareStep[] = [];
  const result: PrepareResult = { device: dev, found: 'blank', steps };

  let facts = await inspectDisk(dev, runner, opts.log);
  let verdict = classifyDisk(facts);
  if (verdict.kind === 'refuse' && opts.reset) {
    ({ facts, verdict } = await tryReset(opts, runner, facts, verdict, steps));
    result.found = 'reset';
  }

  let filesystem: 'pending' | 'ext4' = 'pending';
  switch (verdict.kind) {
    case 'refuse':
      fail(verdict.code, `refusing ${dev}: found ${verdict.found}; nothing was written`);
    case 'blank':
      await luksFormat(cs, dev, opts.key);
      steps.push('formatted');
      await writeToken(cs, dev, { filesystem: 'pending' }, false);
      steps.push('token-written');
      break;
    case 'unfinished':
      if (result.found !== 'reset') result.found = 'sextant-unfinished';
      if (verdict.keyslots > 0) {
        // Header and keyslot were written; only the token is missing. Finish, don't redo.
        if (!(await keyOpensDisk(cs, dev, facts.size, opts.key))) {
          fail('DISK_WRONG_KEY', `refusing ${dev}: a sextant-shaped LUKS2 header without token whose keyslot does not accept this key; nothing was written`);
        }
      } else {
        // No keyslot: the volume key was never stored, so nothing in the data area can ever be
        // decrypted by anyone; redo only if the data area was also never written.
        if (!verdict.dataUntouched) {
          fail('DISK_FOREIGN_DATA', `refusing ${dev}: an unfinished LUKS2 header (no keyslot) over a data area that is not empty; nothing was written`);
        }
        await luksFormat(cs, dev, opts.key);
        steps.push('reformatted-unfinished');
      }
      await writeToken(cs, dev, { filesystem: 'pending' }, false);
      steps.push('token-written');
      break;
    case 'ours':
      if (result.found !== 'reset') result.found = 'sextant';
      steps.push('header-verified');
      filesystem = verdict.filesystem;
      break;
  }
  // Every path proves the key against the header as written now (a wrong key never formats:
  // the only formats above happen on blank or keyslot-less disks).
  if (!(await keyOpensDisk(cs, dev, facts.size, opts.key))) {
    fail('DISK_WRONG_KEY', `the key does not open ${dev}; the disk was left as it is`);
  }
  steps.push('key-verified');
  result.luksUuid = (await probeSignature(runner, dev, opts.log)).UUID;
  if (!opts.open) return result;

  const mapper = await openMapping(cs, dev, opts.mapperName ?? DEFAULT_MAPPER_NAME, opts.key);
  steps.push('opened');
  result.mapper = mapper;
  const fsAction = await ensureFilesystem(runner, mapper, filesystem, async () => {
    await writeToken(cs, dev, { filesystem: 'ext4' }, true);
  }, opts.log);
  if (fsAction === 'mkfs') steps.push('mkfs');
  if (fsAction !== 'none') steps.push('filesystem-recorded');
  const mountpoint = opts.mountpoint ?? DEFAULT_MOUNTPOINT;
  if ((await ensureMounted(runner, mapper, mountpoint, opts.log)) === 'mounted') steps.push('mounted');
  result.mountpoint = mountpoint;
  return result;
}

/** Sha-256 over the head bytes and the size: what a reset order must name. */
export async function resetFingerprint(facts: DiskFacts): Promise<string> {
  return `${await headFingerprint(facts.device, Math.min(facts.size, BLANK_HEAD_BYTES))}:${facts.size}`;
}

async function tryReset(
  opts: PrepareOptions,
  runner: Runner,
  facts: DiskFacts,
  verdict: Extract<DiskVerdict, { kind: 'refuse' }>,
  steps: PrepareStep[],
): Promise<{ facts: DiskFacts; verdict: DiskVerdict }> {
  const fingerprint = await resetFingerprint(facts);
  if (!(await opts.reset!.authorizes({ device: opts.device, fingerprint, found: verdict.found }))) return { facts, verdict };
  const dev = opts.device;
  const MiB = 1024 * 1024;
  await runner('dd', ['if=/dev/zero', `of=${dev}`, 'bs=1M', `count=${BLANK_HEAD_BYTES / MiB}`, 'conv=notrunc,fsync', 'status=none'], { log: opts.log });
  await runner('dd', ['if=/dev/zero', `of=${dev}`, 'bs=1M', `count=${BLANK_TAIL_BYTES / MiB}`, `seek=${facts.size - BLANK_TAIL_BYTES}`, 'oflag=seek_bytes', 'conv=notrunc,fsync', 'status=none'], { log: opts.log });
  steps.push('reset-wiped');
  const after = await inspectDisk(dev, runner, opts.log);
  return { facts: after, verdict: classifyDisk(after) };
}
