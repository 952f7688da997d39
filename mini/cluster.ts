/**
 * A local confidential cluster on QEMU: one key service and N nodes, each with OVMF + swtpm,
 * every process recorded in the state folder (mini/state.ts) so any later command finds and
 * stops exactly what was started. The library behind `sextant mini` and `sextant mini apply`:
 *
 *   const c = await MiniCluster.open({ dir: '.sextant-mini' });   // lock + reconcile
 *   await c.ensureKeyService(image);
 *   await c.startNode({ name: 'node-3', image: '/path/to/image-dir' });  // boots, returns at once
 *   const [v] = await c.waitForNodes(['node-3'], { onChange });       // until done or failed
 *   await c.stopNode('node-1', { remove: true });
 *   await c.listNodes();                                             // NodeView[]
 *   await c.close();                                                 // nodes keep running
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SextantError } from '../lib/errors.js';
import { checkImageDir, IMAGE_FILES, imageVersionOf, type NodeImage } from './image.js';
import { freeLoopbackPort, keyServiceFiles, portFree, readAuditLog, startKeyServiceProcess, type AuditRecordLike } from './keyservice.js';
import { assertVmToolsPresent, createNodeMachine, type NodeMachine } from './machine.js';
import { nodeView, viewKey, type NodeMilestones, type NodeView } from './node-view.js';
import { isSameProcess, stopProcess, type ProcessRecord, type StopOutcome } from './proc.js';
import { agentConfigFor, kvmUsable, launchNode, powerOff, type Accel, type LaunchedNode } from './qemu.js';
import { SerialTail } from './serial.js';
import {
  emptyState,
  lockState,
  NODE_NAME_RE,
  nodeSerialLog,
  readState,
  reconcileState,
  recordedProcesses,
  writeState,
  type KeyServiceRecord,
  type MiniState,
  type NodeRecord,
  type Reconciled,
  type StateLock,
} from './state.js';
import { ensureEkCa, type Log } from './swtpm.js';

export type AccelChoice = Accel | 'auto';

export interface StartNodeOptions {
  /** Default: the next free node-N. */
  name?: string;
  /** An image folder (sextant-node.raw + measurements.json); default: the cluster's image. */
  image?: string;
  /** Recorded with the node; default: the image's measurements.json image.version. */
  imageVersion?: string;
  accel?: AccelChoice;
  /** Default 2 under KVM, 1 under TCG (one host thread per node: several boot at once on 2 cores). */
  cpus?: number;
  memoryMiB?: number;
  stateDiskMiB?: number;
}

export interface WaitOptions {
  /** Per node, from its qemu start: then it counts as failed (default 20 min; 5 min under KVM). */
  timeoutMs?: number;
  pollMs?: number;
  onChange?: (node: NodeView, all: NodeView[]) => void;
  signal?: AbortSignal;
}

export interface KeyServiceView {
  running: boolean;
  pid?: number;
  port?: number;
  url?: string;
  fingerprint?: string;
  clusterId?: string;
  auditLog?: string;
  log?: string;
}

export interface MiniStatus {
  dir: string;
  nodes: NodeView[];
  keyservice: KeyServiceView;
}

export interface DownResult {
  stopped: { what: string; pid: number; outcome: StopOutcome }[];
  removed: boolean;
}

/** Which accelerator a choice means on this host. */
export async function resolveAccel(choice: AccelChoice = 'auto'): Promise<Accel> {
  if (choice !== 'auto') {
    if (choice === 'kvm' && !(await kvmUsable())) throw new SextantError({ code: 'TOOL_MISSING', message: '--accel kvm: /dev/kvm cannot be opened read-write here' });
    return choice;
  }
  return (await kvmUsable()) ? 'kvm' : 'tcg-single';
}

function readMeasurementPcrs(imageDir: string): Record<string, { expected: string; enforced?: boolean }> | undefined {
  try {
    return (JSON.parse(readFileSync(path.join(imageDir, IMAGE_FILES.measurements), 'utf8')) as { pcrs: Record<string, { expected: string; enforced?: boolean }> }).pcrs;
  } catch {
    return undefined;
  }
}

/** Audit records read again only when the log grew. */
class AuditCache {
  private size = -1;
  private records: AuditRecordLike[] = [];
  constructor(private readonly file: string | undefined) {}
  async get(): Promise<AuditRecordLike[]> {
    if (!this.file) return [];
    const size = existsSync(this.file) ? statSync(this.file).size : 0;
    if (size !== this.size) {
      this.records = await readAuditLog(this.file);
      this.size = size;
    }
    return this.records;
  }
}

const auditFile = (s: MiniState): string | undefined => (s.keyservice ? path.join(s.keyservice.stateDir, 'audit.log') : undefined);

function observe(n: NodeRecord, lines: SerialTail['lines'], audit: AuditRecordLike[], o: { timedOut?: boolean } = {}): NodeView {
  const qemuRunning = n.boot?.qemu !== undefined && isSameProcess(n.boot.qemu);
  const started = n.boot ? Date.parse(n.boot.startedAt) : Date.now();
  const v = nodeView({
    name: n.name,
    image: n.image,
    lines,
    audit: audit.filter((a) => a.diskUuid === n.statePartUuid),
    measurements: readMeasurementPcrs(n.image),
    qemuRunning,
    pids: { qemu: qemuRunning ? n.boot?.qemu?.pid : undefined, swtpm: n.boot?.swtpm && isSameProcess(n.boot.swtpm) ? n.boot.swtpm.pid : undefined },
    elapsedSeconds: n.boot ? ((milestoneEnd(n.boot.milestones) ?? (Date.now() - started) / 1000)) : 0,
    timedOut: o.timedOut,
    stoppedOnPurpose: n.stoppedAt !== undefined,
  });
  // Times the watcher saw each milestone arrive beat a re-read console (whose lines carry no clock).
  return { ...v, imageVersion: n.imageVersion ?? imageVersionOf(n.image), milestones: { ...v.milestones, ...n.boot?.milestones } };
}

const milestoneEnd = (m: NodeMilestones | undefined): number | undefined => m?.done;

/** Reads the whole serial log once (a snapshot: every line gets the same stamp). */
async function snapshotLines(n: NodeRecord): Promise<SerialTail['lines']> {
  const tail = new SerialTail(nodeSerialLog(n), process.hrtime.bigint());
  await tail.poll();
  return tail.lines;
}

/** Status without taking the lock or changing anything (`sextant mini status`). */
export async function readMiniStatus(dir: string): Promise<MiniStatus> {
  const abs = path.resolve(dir);
  const s = (await readState(abs)) ?? emptyState();
  const audit = await new AuditCache(auditFile(s)).get();
  const nodes: NodeView[] = [];
  for (const n of Object.values(s.nodes)) nodes.push(observe(n, await snapshotLines(n), audit));
  return { dir: abs, nodes, keyservice: keyServiceView(s.keyservice) };
}

function keyServiceView(k: KeyServiceRecord | undefined): KeyServiceView {
  if (!k) return { running: false };
  const running = k.process !== undefined && isSameProcess(k.process);
  return {
    running,
    pid: running ? k.process?.pid : undefined,
    port: k.port,
    url: `https://127.0.0.1:${k.port}`,
    fingerprint: k.fingerprint,
    clusterId: k.clusterId,
    auditLog: path.join(k.stateDir, 'audit.log'),
    log: path.join(path.dirname(k.stateDir), 'keyservice.log'),
  };
}

export class MiniCluster {
  private readonly launched = new Map<string, LaunchedNode>();
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly s: MiniState,
    private readonly lock: StateLock,
    readonly reconciled: Reconciled,
    private readonly log?: Log,
  ) {}

  /** Takes the folder's lock (MINI_BUSY if another command holds it) and reconciles its records with what runs. */
  static async open(o: { dir?: string; log?: Log } = {}): Promise<MiniCluster> {
    const dir = path.resolve(o.dir ?? '.sextant-mini');
    const lock = await lockState(dir);
    try {
      const s = (await readState(dir)) ?? emptyState();
      const reconciled = await reconcileState(s);
      for (const g of reconciled.gone) o.log?.(`cleaned the record of ${g}: it is not running`);
      for (const r of reconciled.reused) o.log?.(`dropped the record of ${r}: that PID now belongs to another process (left alone)`);
      for (const a of reconciled.adopted) o.log?.(`found ${a} by its PID file: recorded`);
      await writeState(dir, s);
      return new MiniCluster(dir, s, lock, reconciled, o.log);
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  get state(): Readonly<MiniState> {
    return this.s;
  }

  private save(): Promise<void> {
    const next = this.saving.then(() => writeState(this.dir, this.s));
    this.saving = next.catch(() => undefined);
    return next;
  }

  /** Lets this process exit with the cluster running, and releases the lock. */
  async close(): Promise<void> {
    for (const n of this.launched.values()) n.detach();
    await this.saving;
    await this.lock.release();
  }

  /** The key service, started if it does not run (same state, port and TLS identity as before). */
  async ensureKeyService(image: NodeImage, o: { extraArgs?: string[] } = {}): Promise<KeyServiceRecord> {
    const k = this.s.keyservice;
    if (k?.process && isSameProcess(k.process)) return k;
    const ca = await ensureEkCa(path.join(this.dir, 'ek-ca'), this.log);
    // The files (and so the TLS fingerprint the nodes pin) are made once per cluster.
    const files = k?.files ?? (await keyServiceFiles(image.dir, path.join(this.dir, 'keyservice'), { log: this.log }));
    let port = k?.port;
    if (port === undefined || !(await portFree(port))) {
      const running = Object.values(this.s.nodes).filter((n) => n.boot?.qemu);
      if (port !== undefined && running.length > 0) {
        throw new SextantError({ code: 'MINI_BUSY', message: `the key service's port 127.0.0.1:${port} is taken by another program, and running nodes relay to it: free it, or \`sextant mini down\`` });
      }
      port = await freeLoopbackPort();
    }
    const stateDir = path.join(this.dir, 'keyservice', 'state');
    const ks = await startKeyServiceProcess({ port, stateDir, files, ekCa: [ca.rootCert, ca.issuerCert], extraArgs: o.extraArgs, log: this.log });
    this.s.keyservice = { port, fingerprint: ks.fingerprint, clusterId: ks.clusterId, stateDir, files, process: ks.record, startedAt: new Date().toISOString() };
    this.s.image ??= { dir: image.dir };
    await this.save();
    return this.s.keyservice;
  }

  /** Stops the key service (by its record); its state stays. */
  async stopKeyService(): Promise<StopOutcome | undefined> {
    const p = this.s.keyservice?.process;
    if (!p) return undefined;
    const outcome = await stopProcess(p);
    this.s.keyservice!.process = undefined;
    await this.save();
    return outcome;
  }

  private nextName(): string {
    for (let i = 1; ; i++) if (!this.s.nodes[`node-${i}`]) return `node-${i}`;
  }

  /**
   * Boots a node and returns once its processes run (watch it with waitForNodes). A new name
   * gets a new machine (TPM, vars, disks); a known, stopped one boots its machine again
   * (a reboot: its state disk is opened, not formatted). A running one is returned as it is.
   */
  async startNode(o: StartNodeOptions = {}): Promise<NodeRecord> {
    const name = o.name ?? this.nextName();
    if (!NODE_NAME_RE.test(name)) throw new SextantError({ code: 'USAGE', message: `node name "${name.slice(0, 40)}": lowercase letters, digits and '-', at most 32` });
    const known = this.s.nodes[name];
    if (known?.boot?.qemu && isSameProcess(known.boot.qemu)) return known;
    const imageDir = o.image ?? known?.image ?? this.s.image?.dir;
    if (!imageDir) throw new SextantError({ code: 'USAGE', message: 'startNode needs an image folder (none recorded for this cluster yet)' });
    const image = checkImageDir(imageDir);
    const ks = await this.ensureKeyService(image);
    await assertVmToolsPresent();
    const accel = await resolveAccel(o.accel);
    const cpus = o.cpus ?? (accel === 'kvm' ? 2 : 1);
    const memoryMiB = o.memoryMiB ?? 2048;
    const dir = path.join(this.dir, 'nodes', name);
    let rec: NodeRecord | undefined = known;
    if (rec && rec.image !== image.dir) {
      // Another image on a known name: a new machine (a node is replaced, never patched).
      await this.stopNode(name, { remove: true });
      rec = undefined;
    }
    if (!rec) {
      await rm(dir, { recursive: true, force: true });
      const partition = randomUUID();
      rec = { name, image: image.dir, imageVersion: o.imageVersion ?? imageVersionOf(image.dir), dir, statePartUuid: partition, createdAt: new Date().toISOString() };
      this.s.nodes[name] = rec;
      await this.save();
      await createNodeMachine({ image: path.join(image.dir, IMAGE_FILES.disk), dir, stateDiskMiB: o.stateDiskMiB, ekCa: await ensureEkCa(path.join(this.dir, 'ek-ca')), stateDiskGuids: { disk: randomUUID(), partition }, log: this.log });
    }
    const machine = this.machineOf(rec);
    const n = await launchNode({
      machine,
      keyServicePort: ks.port,
      agentConfig: agentConfigFor(ks.fingerprint, { node: { name } }),
      serialLog: nodeSerialLog(rec),
      accel,
      cpus,
      memoryMiB,
      log: this.log,
    });
    this.launched.set(name, n);
    rec.boot = { startedAt: n.startedAt, accel, cpus, memoryMiB, qemu: n.qemu, swtpm: n.swtpm, milestones: {} };
    delete rec.stoppedAt;
    await this.save();
    return rec;
  }

  private machineOf(rec: NodeRecord): NodeMachine {
    const tpmDir = path.join(rec.dir, 'tpm');
    const ca = path.join(this.dir, 'ek-ca');
    return {
      dir: rec.dir,
      tpm: { dir: tpmDir, stateDir: path.join(tpmDir, 'state'), caCertPath: path.join(ca, 'root.pem'), issuerCertPath: path.join(ca, 'issuercert.pem') },
      vars: path.join(rec.dir, 'OVMF_VARS.fd'),
      bootDisk: path.join(rec.dir, 'boot.qcow2'),
      stateDisk: path.join(rec.dir, 'state.img'),
      statePartUuid: rec.statePartUuid,
    };
  }

  /**
   * Powers a node off (ACPI power button, then qemu killed after `graceMs`, then its swtpm),
   * each by its record. `remove`: its machine and record go too (a replaced node).
   */
  async stopNode(name: string, o: { remove?: boolean; graceMs?: number } = {}): Promise<void> {
    const rec = this.s.nodes[name];
    if (!rec) throw new SextantError({ code: 'USAGE', message: `no node "${name.slice(0, 40)}" in ${this.dir}` });
    if (rec.boot?.qemu || rec.boot?.swtpm) {
      const qmpSocket = path.join(rec.dir, 'run', 'qmp.sock');
      const none: ProcessRecord = { pid: -1, marker: '' };
      await powerOff({ qemu: rec.boot.qemu ?? none, swtpm: rec.boot.swtpm ?? none, qmpSocket }, { graceMs: o.graceMs ?? 20_000, log: this.log });
      rec.boot.qemu = undefined;
      rec.boot.swtpm = undefined;
    }
    this.launched.delete(name);
    rec.stoppedAt = new Date().toISOString();
    if (o.remove) {
      await rm(rec.dir, { recursive: true, force: true });
      delete this.s.nodes[name];
    }
    await this.save();
  }

  /** Every node with its state now (console + audit log read once). */
  async listNodes(): Promise<NodeView[]> {
    const audit = await new AuditCache(auditFile(this.s)).get();
    const out: NodeView[] = [];
    for (const n of Object.values(this.s.nodes)) out.push(observe(n, await snapshotLines(n), audit));
    return out;
  }

  async status(): Promise<MiniStatus> {
    return { dir: this.dir, nodes: await this.listNodes(), keyservice: keyServiceView(this.s.keyservice) };
  }

  /**
   * Watches the named nodes until each is done or one failed (or `signal` aborts: then the views
   * as they are). `onChange` gets a node's view whenever something other than its elapsed
   * time changed. Nodes are never stopped here.
   */
  async waitForNodes(names: string[], o: WaitOptions = {}): Promise<NodeView[]> {
    const recs = names.map((n) => {
      const r = this.s.nodes[n];
      if (!r) throw new SextantError({ code: 'USAGE', message: `no node "${n.slice(0, 40)}" in ${this.dir}` });
      return r;
    });
    const tails = new Map<string, SerialTail>();
    for (const r of recs) {
      const skew = r.boot ? (Date.now() - Date.parse(r.boot.startedAt)) / 1000 : 0;
      tails.set(r.name, new SerialTail(nodeSerialLog(r), process.hrtime.bigint(), skew));
    }
    const audit = new AuditCache(auditFile(this.s));
    const keys = new Map<string, string>();
    const views = new Map<string, NodeView>();
    for (;;) {
      const records = await audit.get();
      let changedState = false;
      for (const r of recs) {
        const tail = tails.get(r.name)!;
        await tail.poll();
        const limit = o.timeoutMs ?? (r.boot?.accel === 'kvm' ? 5 : 20) * 60_000;
        const timedOut = r.boot !== undefined && Date.now() - Date.parse(r.boot.startedAt) > limit;
        const shown = observe(r, tail.lines, records, { timedOut });
        // Record when each milestone first showed, for `status` and the figures.
        if (r.boot) {
          for (const [k, t] of Object.entries(shown.milestones)) {
            const key = k as keyof NodeMilestones;
            if (t !== undefined && r.boot.milestones?.[key] === undefined) {
              (r.boot.milestones ??= {})[key] = t;
              changedState = true;
            }
          }
        }
        views.set(r.name, shown);
        const key = viewKey(shown);
        if (keys.get(r.name) !== key) {
          keys.set(r.name, key);
          o.onChange?.(shown, [...views.values()]);
        }
      }
      if (changedState) await this.save();
      const all = [...views.values()];
      if (all.every((v) => v.state !== 'running') || all.some((v) => v.state === 'failed') || o.signal?.aborted) return all;
      await sleep(o.pollMs ?? 500, undefined, { signal: o.signal }).catch(() => undefined);
    }
  }

  /**
   * Stops every recorded process (nodes, then the key service), each by PID after checking
   * it is still the process started; `keepState` leaves the folder (disks, TPMs, key service
   * state) for a later `up`, else it is removed.
   */
  async down(o: { keepState?: boolean } = {}): Promise<DownResult> {
    const stopped: DownResult['stopped'] = [];
    await Promise.all(
      Object.values(this.s.nodes).map(async (n) => {
        if (!n.boot) return;
        if (o.keepState && n.boot.qemu && isSameProcess(n.boot.qemu)) {
          // A clean shutdown keeps the guest's disks consistent for the next boot.
          await powerOff({ qemu: n.boot.qemu, swtpm: { pid: -1, marker: '' }, qmpSocket: path.join(n.dir, 'run', 'qmp.sock') }, { graceMs: 20_000 });
          stopped.push({ what: `${n.name} qemu`, pid: n.boot.qemu.pid, outcome: 'stopped' });
          n.boot.qemu = undefined;
        }
      }),
    );
    const procs = recordedProcesses(this.s);
    // qemu first (it holds swtpm's socket), then swtpm, the key service last.
    const order = (w: string) => (w.endsWith('qemu') ? 0 : w.endsWith('swtpm') ? 1 : 2);
    procs.sort((a, b) => order(a.what) - order(b.what));
    for (const p of procs) stopped.push({ what: p.what, pid: p.record.pid, outcome: await stopProcess(p.record) });
    for (const n of Object.values(this.s.nodes)) {
      if (n.boot) {
        n.boot.qemu = undefined;
        n.boot.swtpm = undefined;
      }
      n.stoppedAt ??= new Date().toISOString();
    }
    if (this.s.keyservice) this.s.keyservice.process = undefined;
    this.launched.clear();
    if (o.keepState) {
      await this.save();
      return { stopped, removed: false };
    }
    await this.saving;
    await rm(this.dir, { recursive: true, force: true });
    return { stopped, removed: true };
  }
}
