import type { ExecLogger } from '../../lib/exec.js';
import type { Runner } from '../disk/runner.js';

export interface NotifyMessage {
  ready?: boolean;
  status?: string;
}

/**
 * sd_notify through `systemd-notify` (node has no unix datagram sockets). A no-op outside a
 * Type=notify unit (no NOTIFY_SOCKET), and never fatal: a lost status line must not stop a boot.
 */
export async function sdNotify(msg: NotifyMessage, runner: Runner, env: NodeJS.ProcessEnv = process.env, log?: ExecLogger): Promise<boolean> {
  if (!env.NOTIFY_SOCKET) return false;
  const args = [...(msg.ready ? ['--ready'] : []), ...(msg.status !== undefined ? [`--status=${msg.status.replace(/\n/g, ' ')}`] : [])];
  if (args.length === 0) return false;
  try {
    await runner('systemd-notify', args, { log, timeoutMs: 5000 });
    return true;
  } catch (e) {
    log?.(`sd_notify failed: ${(e as Error).message}`);
    return false;
  }
}
