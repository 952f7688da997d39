import { replaySha256 } from '../../keyservice/service.js';
import { hash, toHex } from '../../lib/bytes.js';
import { run } from '../../lib/exec.js';
import { buildEventLog, EV_EVENT_TAG, EV_SEPARATOR, type SynthEvent } from './eventlog.js';

/** A short boot (a separator in PCR 4, a command line in PCR 9) for key service tests on a live swtpm. */
export const BOOT_EVENTS: SynthEvent[] = [
  { pcr: 4, type: EV_SEPARATOR, data: Buffer.alloc(4) },
  { pcr: 9, type: EV_EVENT_TAG, data: Buffer.from('console=ttyS0 root=/dev/vda2') },
];

/**
 * Extends the swtpm's PCRs with the events (tpm2_pcrextend) and returns their event log, its
 * SHA-256 replay, and the measurements entries that enforce the replayed PCRs 4 and 9.
 */
export async function measureBoot(tcti: string, events: SynthEvent[] = BOOT_EVENTS) {
  for (const e of events) await run('tpm2_pcrextend', [`${e.pcr}:sha256=${toHex(hash('sha256', e.data))}`], { env: { TPM2TOOLS_TCTI: tcti } });
  const eventLog = buildEventLog(events);
  const replayed = replaySha256(eventLog).pcrs;
  return { eventLog, replayed, enforced: { '4': { expected: replayed['4'], enforced: true }, '9': { expected: replayed['9'], enforced: true } } };
}
