import { isSextantError } from '../../lib/errors.js';
import type { ExecLogger } from '../../lib/exec.js';
import { probeSignature, type BlkidSignature } from './blkid.js';
import { BLANK_HEAD_BYTES, BLANK_TAIL_BYTES, MIN_DEVICE_BYTES } from './constants.js';
import { deviceSize, isRangeZero } from './device-bytes.js';
import { dumpHeaderReadOnly, readHeaderArea } from './header-copy.js';
import { checkLuks2Headers, describeDamage } from './luks2-binary-header.js';
import { parseLuks2Metadata, type Luks2Metadata } from './luks2-metadata.js';
import type { Runner } from './runner.js';

/**
 * Everything the decision needs, gathered read-only: the device is only ever opened O_RDONLY
 * here (blkid -p, node reads), and cryptsetup reads a scratch copy of the header area
 * (header-copy.ts), never the device.
 */
export interface DiskFacts {
  device: string;
  size: number;
  /** blkid's findings; undefined when blkid itself failed (e.g. ambivalent signatures). */
  signature?: BlkidSignature;
  blkidError?: string;
  /** [0, BLANK_HEAD_BYTES) is all zeros. */
  headZero: boolean;
  /** The last BLANK_TAIL_BYTES are all zeros. */
  tailZero: boolean;
  luks2?: {
    rawJson?: string;
    meta?: Luks2Metadata;
    /** cryptsetup could not read the header (ambiguous signatures, bad JSON...). */
    dumpError?: string;
    /** A header copy is damaged (luks2-binary-header.ts): then cryptsetup is not run at all. */
    damage?: string;
    /** The first MiB of the data segment is all zeros: nothing was ever written through dm-crypt there. */
    dataHeadZero?: boolean;
  };
}

const MiB = 1024 * 1024;

export async function inspectDisk(device: string, runner: Runner, log?: ExecLogger): Promise<DiskFacts> {
  const size = await deviceSize(device, runner);
  const facts: DiskFacts = { device, size, headZero: false, tailZero: false };
  try {
    facts.signature = await probeSignature(runner, device, log);
  } catch (e) {
    if (!isSextantError(e)) throw e;
    facts.blkidError = e.message;
  }
  if (size >= MIN_DEVICE_BYTES) {
    facts.headZero = await isRangeZero(device, 0, BLANK_HEAD_BYTES);
    facts.tailZero = await isRangeZero(device, size - BLANK_TAIL_BYTES, BLANK_TAIL_BYTES);
  }
  if (facts.signature?.TYPE === 'crypto_LUKS' && facts.signature.VERSION === '2') {
    const l: NonNullable<DiskFacts['luks2']> = {};
    facts.luks2 = l;
    const area = await readHeaderArea(device, size);
    l.damage = describeDamage(checkLuks2Headers(area));
    if (l.damage === undefined) {
      try {
        l.rawJson = await dumpHeaderReadOnly({ runner, log }, area, size);
        l.meta = parseLuks2Metadata(l.rawJson);
      } catch (e) {
        if (!isSextantError(e)) throw e;
        l.dumpError = e.message;
      }
    }
    const off = Number(Object.values(l.meta?.segments ?? {})[0]?.offset);
    if (Number.isSafeInteger(off) && off > 0 && off + MiB <= size) l.dataHeadZero = await isRangeZero(device, off, MiB);
  }
  return facts;
}
