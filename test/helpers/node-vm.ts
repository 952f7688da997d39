/**
 * The end-to-end harness: boots a built node image (sextant image build) the way a cloud
 * would, with real firmware (OVMF), a real TPM 2.0 (swtpm, EK certificate from a test CA), a
 * blank state disk and the key service on the host's loopback, and records the serial console.
 *
 *   const m = await createNodeMachine({ image, dir });            // TPM, firmware vars, disks
 *   const ks = await startKeyServiceProcess({ ... });              // sextant keyservice, by PID
 *   const boot = await bootNode({ machine: m, keyServicePort, agentConfig, until });
 *
 * The implementation is mini/ (`sextant mini` boots nodes the same way); this file adds what
 * a test process needs: every process it started is killed if it exits without its hooks.
 * scripts/e2e/boot-node.mjs runs the same harness by hand.
 */
import { bootNode as bootMiniNode, type BootOptions, type BootResult } from '../../mini/qemu.js';
import { startKeyServiceProcess as startMiniKeyService, type KeyServiceProcess, type StartKeyServiceOptions } from '../../mini/keyservice.js';
import { agentSteps } from '../../mini/boot-phases.js';
import type { NodeMachine } from '../../mini/machine.js';
import type { ConsoleLine } from '../../mini/serial.js';

export { assertVmToolsPresent, createNodeMachine, createOverlay, createStateDisk, STATE_PART_LABEL, type NodeMachine } from '../../mini/machine.js';
export {
  freeLoopbackPort,
  GUEST_KEYSERVICE_ADDR,
  GUEST_KEYSERVICE_PORT,
  GUEST_KEYSERVICE_URL,
  keyServiceFiles,
  readAuditLog,
  type AuditRecordLike,
  type KeyServiceFiles,
  type KeyServiceProcess,
} from '../../mini/keyservice.js';
export { AGENT_FAILED, AGENT_START_FAILED, agentConfigFor, agentCrashLooping, bootSettled, MULTI_USER, qemuArgs, type BootOptions, type BootResult } from '../../mini/qemu.js';
export type { ConsoleLine } from '../../mini/serial.js';

export type Log = (line: string) => void;

const children = new Set<number>();
process.once('exit', () => {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

/** mini/keyservice.ts's start, and the process is killed if the test process exits without stopping it. */
export async function startKeyServiceProcess(o: StartKeyServiceOptions): Promise<KeyServiceProcess> {
  const ks = await startMiniKeyService(o);
  children.add(ks.pid);
  return { ...ks, stop: () => ks.stop().finally(() => children.delete(ks.pid)) };
}

/** The key service for one node machine: its EK certificates are trusted through the machine's swtpm CA. */
export function startNodeKeyService(machine: NodeMachine, o: Omit<StartKeyServiceOptions, 'ekCa'>): Promise<KeyServiceProcess> {
  return startKeyServiceProcess({ ...o, ekCa: [machine.tpm.caCertPath, machine.tpm.issuerCertPath] });
}

/** The agent printed its last step record, `{"step":"done","outcome":"done"}`, on the console. */
export const agentDone = (lines: readonly ConsoleLine[]): boolean => agentSteps(lines).some((s) => s.record.step === 'done' && s.record.outcome === 'done');

/** mini/qemu.ts's bootNode, with qemu and swtpm killed if the test process exits mid-boot. */
export async function bootNode(o: BootOptions): Promise<BootResult> {
  let pids: number[] = [];
  try {
    return await bootMiniNode({
      ...o,
      onLaunched: (n) => {
        pids = [n.qemu.pid, n.swtpm.pid];
        for (const p of pids) children.add(p);
        o.onLaunched?.(n);
      },
    });
  } finally {
    for (const p of pids) children.delete(p);
  }
}

/**
 * For diagnosis only: a drop-in (systemd >= 256 imports `systemd.unit-dropin.*` credentials)
 * that also copies the agent's stderr onto the serial console. Not used by the assertions.
 */
export function agentStderrDropIn(): Record<string, string> {
  return { 'systemd.unit-dropin.sextant-agent.service': '[Service]\nStandardError=journal+console\n' };
}
