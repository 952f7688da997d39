import type { Runner } from './runner.js';
import type { ExecLogger } from '../../lib/exec.js';

/** What libblkid found on a device (`blkid -p -o export`): empty when nothing (exit 2). */
export type BlkidSignature = Record<string, string>;

export function parseBlkidExport(text: string): BlkidSignature {
  const out: BlkidSignature = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  delete out.DEVNAME;
  // On a partition, `blkid -p` also reports the entry in the parent's partition table
  // (PART_ENTRY_NAME=sextant-state, ...): that is where the content lives, not what it is.
  for (const k of Object.keys(out)) if (k.startsWith('PART_ENTRY_')) delete out[k];
  return out;
}

/**
 * Low-level probe (-p: reads the device itself, no cache). Exit 2 means no signature;
 * any other failure (e.g. ambivalent signatures) propagates: the caller refuses.
 */
export async function probeSignature(runner: Runner, device: string, log?: ExecLogger): Promise<BlkidSignature> {
  const r = await runner('blkid', ['-p', '-o', 'export', device], { okExitCodes: [2], log });
  return r.exitCode === 2 ? {} : parseBlkidExport(r.stdout);
}

/** One line naming what was found, for refusals ("TYPE=ext4 USAGE=filesystem"). */
export function describeSignature(sig: BlkidSignature): string {
  const keys = ['TYPE', 'PTTYPE', 'VERSION', 'LABEL', 'USAGE', 'UUID', 'PTUUID'];
  return keys.filter((k) => sig[k] !== undefined).map((k) => `${k}=${sig[k]}`).join(' ');
}
