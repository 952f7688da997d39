/**
 * The node both rollout tests attest with (keyservice-rollout, keyservice-rollout-etcd): a swtpm
 * whose PCRs 4 and 9 were extended by tpm2_pcrextend with a separator and a kernel command line,
 * the matching event log, and signed measurement files for it (`node`) or for a boot whose
 * command line changed (`changed`), of any image version.
 */
import path from 'node:path';
import { replaySha256 } from '../../keyservice/service.js';
import { hash, toHex } from '../../lib/bytes.js';
import { run } from '../../lib/exec.js';
import { buildEventLog, EV_IPL, EV_SEPARATOR, type SynthEvent } from './eventlog.js';
import { measurementsKeys, writeSignedMeasurements, type MeasurementsFiles } from './keyservice-fixture.js';
import type { Swtpm } from './swtpm.js';

export const ROLLOUT_DISK = 'e7cd0000-0000-4000-8000-0000000000aa';
const CMDLINE = Buffer.from('console=ttyS0 root=/dev/vda2');
const CHANGED_CMDLINE = Buffer.from('console=ttyS0 root=/dev/vda2 init=/bin/sh');
const EVENTS: SynthEvent[] = [
  { pcr: 4, type: EV_SEPARATOR, data: Buffer.alloc(4) },
  { pcr: 9, type: EV_IPL, data: CMDLINE },
];
const sha = (b: Uint8Array) => toHex(hash('sha256', b));
/** PCR extension from zero, the test's own arithmetic (checked against the replay in keyservice-rollout). */
export const extendFromZero = (digests: string[]) => digests.reduce((pcr, d) => sha(Buffer.concat([Buffer.from(pcr, 'hex'), Buffer.from(d, 'hex')])), '00'.repeat(32));

export interface RolloutNode {
  eventLog: Buffer;
  keys: MeasurementsFiles;
  /** PCRs replayed from the event log. */
  replayed: Record<string, string>;
  /** PCR 9 as the node's boot extends it. */
  nodePcr9: string;
  /** A signed file of `version`: the node's boot (`node`) or one whose kernel command line changed. */
  file(version: string, boot: 'node' | 'changed'): Promise<string>;
}

export async function prepareRolloutNode(sw: Swtpm, dir: string): Promise<RolloutNode> {
  for (const e of EVENTS) await run('tpm2_pcrextend', [`${e.pcr}:sha256=${sha(e.data)}`], { env: { TPM2TOOLS_TCTI: sw.tcti } });
  const eventLog = buildEventLog(EVENTS);
  const replayed = replaySha256(eventLog).pcrs;
  const keys = await measurementsKeys(dir);
  const file = async (version: string, boot: 'node' | 'changed') => {
    const f = path.join(dir, `m-${version}-${boot}.json`);
    const cmdline = sha(boot === 'node' ? CMDLINE : CHANGED_CMDLINE);
    await writeSignedMeasurements(
      f,
      keys.keyPem,
      {
        '4': { expected: replayed['4'], enforced: true, events: [{ type: 'EV_SEPARATOR', digest: sha(Buffer.alloc(4)), description: 'separator', component: 'separator' }] },
        '9': { expected: extendFromZero([cmdline]), enforced: true, events: [{ type: 'EV_IPL', digest: cmdline, description: 'kernel command line', component: '.cmdline' }] },
      },
      version,
    );
    return f;
  };
  return { eventLog, keys, replayed, nodePcr9: extendFromZero([sha(CMDLINE)]), file };
}
