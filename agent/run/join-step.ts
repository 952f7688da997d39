import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { fail, isSextantError } from '../../lib/errors.js';
import type { JoinTicket } from '../../protocol/messages.js';
import type { AgentConfig } from '../config/config.js';
import { joinConfiguration, writeJoinConfiguration } from '../join/join-configuration.js';
import { kubeadmJoin } from '../join/kubeadm-join.js';
import { installKubeletCert } from '../join/kubelet-cert.js';
import type { Runner } from '../disk/runner.js';
import type { Clock, KubeletKey } from './deps.js';
import type { BootPath } from './status.js';

export interface JoinStepInput {
  config: AgentConfig;
  path: BootPath;
  nodeName: string;
  ticket?: JoinTicket;
  kubeletKey?: KubeletKey;
  exec: Runner;
  clock: Clock;
  log: (line: string) => void;
  signal?: AbortSignal;
}

export interface JoinStepResult {
  action: 'kubeadm-join' | 'start-kubelet';
  attempts?: number;
  kubeletCert?: string;
  warnings: string[];
}

/**
 * The JoinConfiguration, written as soon as the ticket arrives (0600 in /run, a tmpfs): if the
 * agent restarts after the lock, the key service gives no second ticket to a locked node, and
 * the join step still finds what kubeadm needs here.
 */
export async function writeJoinFile(config: AgentConfig, ticket: JoinTicket, nodeName: string): Promise<void> {
  const cfg = joinConfiguration(ticket, { name: nodeName, criSocket: config.node.criSocket, kubeletExtraArgs: config.node.kubeletExtraArgs, role: config.node.role });
  await writeJoinConfiguration(config.join.configPath, cfg);
}

/** `systemctl start` of a unit that is not installed: exit 5, "Unit kubelet.service not found." */
function unitMissing(e: unknown): boolean {
  return isSextantError(e, 'EXEC_FAILED') && /exited with 5\b|Unit \S+ not found|not-found|could not be found/i.test(e.message);
}

/**
 * join: install the issued kubelet certificate, write the v1beta4 JoinConfiguration, run
 * `kubeadm join --config FILE` (bounded retries, agent/join/kubeadm-join.ts).
 * rejoin: the node is already a member (its kubelet state is on the state disk): refresh
 * the kubelet certificate if one was issued, then start the kubelet; no kubeadm join.
 */
export async function runJoinStep(i: JoinStepInput): Promise<JoinStepResult> {
  const warnings: string[] = [];
  const installCert = async (): Promise<string | undefined> => {
    if (!i.ticket?.kubeletCert || !i.kubeletKey) return undefined;
    return installKubeletCert(i.config.join.kubeletPkiDir, i.ticket.kubeletCert, i.kubeletKey.keyPem, i.clock.now());
  };

  if (i.path === 'join') {
    if (i.ticket) await writeJoinFile(i.config, i.ticket, i.nodeName);
    else if (!existsSync(i.config.join.configPath)) {
      fail('JOIN_FAILED', `no join ticket in memory and no ${i.config.join.configPath}: the key came from the recovery endpoint, or the key service has no join configuration; a new node cannot join without one`);
    } else warnings.push(`joining with ${i.config.join.configPath}, written before the agent restarted`);
    let kubeletCert: string | undefined;
    const r = await kubeadmJoin({
      kubeadm: i.config.join.kubeadm,
      configPath: i.config.join.configPath,
      attempts: i.config.join.attempts,
      retryDelayMs: i.config.join.retryDelayMs,
      runner: i.exec,
      sleep: (ms) => i.clock.sleep(ms, i.signal),
      log: i.log,
      signal: i.signal,
      // kubeadm reset (before a retry) empties /var/lib/kubelet: install the certificate each time.
      beforeAttempt: async () => {
        kubeletCert = (await installCert()) ?? kubeletCert;
      },
    });
    // The file holds the bootstrap token and kubeadm has used it. (After a failure it stays for
    // the restart: a locked node gets no second ticket.)
    await rm(i.config.join.configPath, { force: true });
    if (!kubeletCert) warnings.push('no kubelet certificate installed: the kubelet bootstraps with the token (needs a CSR approver)');
    return { action: 'kubeadm-join', attempts: r.attempts, kubeletCert, warnings };
  }

  const kubeletCert = await installCert();
  const [cmd, ...args] = i.config.join.startKubelet;
  try {
    await i.exec(cmd, args, { log: i.log, timeoutMs: 120_000 });
  } catch (e) {
    if (!unitMissing(e)) throw e;
    warnings.push(`${i.config.join.startKubelet.join(' ')}: the unit does not exist on this node (${(e as Error).message})`);
  }
  return { action: 'start-kubelet', kubeletCert, warnings };
}
