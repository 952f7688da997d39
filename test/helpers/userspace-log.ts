/**
 * Helpers for the userspace-log proofs: systemd's CEL-JSON record format, and a real TPM
 * (swtpm via tpm2-tools) brought to the state a firmware log describes, then read back.
 */
import { run } from '../../lib/exec.js';
import { parseEventLog } from '../../measurements/eventlog/parse.js';
import { isExtended } from '../../measurements/eventlog/replay.js';
import { bankDigest, type AnyBank } from './eventlog.js';

export interface Measurement {
  pcr: number;
  eventType: string;
  string: string;
  /** Digest per bank when it is not H(string) (a volume key's HMAC). */
  digests?: Record<string, Buffer>;
}

/** One record as systemd writes it to /run/log/systemd/tpm2-measure.log: RS, the JSON object, LF. */
export function celJsonRecord(m: Measurement, banks: readonly AnyBank[]): string {
  const digests = banks.map((b) => ({ hashAlg: b, digest: (m.digests?.[b] ?? bankDigest(b, Buffer.from(m.string))).toString('hex') }));
  return `\x1e${JSON.stringify({ pcr: m.pcr, digests, content_type: 'systemd', content: { string: m.string, eventType: m.eventType } })}\n`;
}

/** Extends a TPM with a firmware log's events for `pcrs`, every bank, as the firmware did (TPM2_PCR_Extend). */
export async function extendFirmwareEvents(env: Record<string, string>, firmwareLog: Buffer, pcrs: number[]): Promise<void> {
  for (const e of parseEventLog(firmwareLog).events.filter((x) => isExtended(x) && pcrs.includes(x.pcr))) {
    await run('tpm2_pcrextend', [`${e.pcr}:${e.digests.map((d) => `${d.alg}=${d.digest.toString('hex')}`).join(',')}`], { env, timeoutMs: 60_000 });
  }
}

/** tpm2_pcrread of `pcrs` in `banks`: {"sha256":{"11":"<hex>"}}. */
export async function tpmPcrRead(env: Record<string, string>, banks: readonly string[], pcrs: number[]): Promise<Record<string, Record<string, string>>> {
  const out = (await run('tpm2_pcrread', [banks.map((b) => `${b}:${pcrs.join(',')}`).join('+')], { env, timeoutMs: 60_000 })).stdout;
  const result: Record<string, Record<string, string>> = {};
  let bank = '';
  for (const line of out.split('\n')) {
    const b = /^\s*(sha\d+):\s*$/.exec(line);
    if (b) result[(bank = b[1])] = {};
    const p = /^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)/.exec(line);
    if (p) result[bank][p[1]] = p[2].toLowerCase();
  }
  return result;
}
