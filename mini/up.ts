/**
 * `sextant mini up`: the image (given, cached for this source tree, or built), the key
 * service, N nodes booted at once, watched until every node is done or one failed; the
 * cluster is left running. Run again, it resumes: running nodes are watched, nodes whose
 * processes are gone (a crash, `down --keep-state`) boot their machines again.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { MiniCluster, resolveAccel, type AccelChoice, type KeyServiceView, type MiniStatus } from './cluster.js';
import { checkImageDir, IMAGE_FILES, resolveNodeImage, type NodeImage } from './image.js';
import { assertVmToolsPresent } from './machine.js';
import type { NodeView } from './node-view.js';
import type { Accel } from './qemu.js';
import type { Log } from './swtpm.js';

export interface UpOptions {
  dir: string;
  nodes: number;
  /** An image folder; default: the cluster's, else the cached build for this source tree (built if missing). */
  image?: string;
  accel?: AccelChoice;
  timeoutMs?: number;
  onChange?: (node: NodeView, all: NodeView[]) => void;
  signal?: AbortSignal;
  log?: Log;
}

export interface UpResult {
  ok: boolean;
  dir: string;
  accel: Accel;
  image: string;
  nodes: NodeView[];
  keyservice: KeyServiceView;
  /** The first node that failed, when one did. */
  failed?: NodeView;
  /** Until every node was done (or one failed), from the start of `up`. */
  seconds: number;
  interrupted: boolean;
}

async function pickImage(c: MiniCluster, o: UpOptions): Promise<NodeImage> {
  if (o.image) return checkImageDir(o.image);
  const recorded = c.state.image?.dir;
  if (recorded && existsSync(path.join(recorded, IMAGE_FILES.disk))) return checkImageDir(recorded);
  return resolveNodeImage({ log: o.log, signal: o.signal });
}

export async function miniUp(o: UpOptions): Promise<UpResult> {
  const t0 = Date.now();
  await assertVmToolsPresent();
  const accel = await resolveAccel(o.accel);
  const c = await MiniCluster.open({ dir: o.dir, log: o.log });
  try {
    const image = await pickImage(c, o);
    await c.ensureKeyService(image);
    const names = Array.from({ length: o.nodes }, (_, i) => `node-${i + 1}`);
    // Booted at once: each node's qemu takes one host thread under TCG.
    await Promise.all(names.map((name) => c.startNode({ name, image: c.state.nodes[name]?.image ?? image.dir, accel })));
    const wait = () => c.waitForNodes(names, { timeoutMs: o.timeoutMs, onChange: o.onChange, signal: o.signal });
    let views = await wait();
    // A guest whose systemd froze before the agent ran (seen on a starved host: its generators
    // took past systemd's 90 s limit, "Failed to fork off sandboxing environment for executing
    // generators") touched nothing: it is booted again, once per node, and said so.
    const rebooted = new Set<string>();
    for (;;) {
      const frozen = views.filter((v) => v.state === 'failed' && v.failure?.bootFroze === true && !rebooted.has(v.name));
      if (frozen.length === 0 || o.signal?.aborted) break;
      for (const v of frozen) {
        rebooted.add(v.name);
        o.log?.(`${v.name}: ${v.failure!.reason.split('\n')[0]}; booting it again (once)`);
        await c.stopNode(v.name, { graceMs: 2_000 });
        await c.startNode({ name: v.name, accel });
      }
      views = await wait();
    }
    const status: MiniStatus = await c.status();
    const failed = views.find((v) => v.state === 'failed');
    return {
      ok: failed === undefined && views.every((v) => v.state === 'done'),
      dir: c.dir,
      accel,
      image: image.dir,
      nodes: views,
      keyservice: status.keyservice,
      failed,
      seconds: (Date.now() - t0) / 1000,
      interrupted: o.signal?.aborted === true,
    };
  } finally {
    await c.close();
  }
}
