/**
 * A scripted node for the state machine's unit tests: a TPM whose PCR 15 follows the real
 * extend rule, a key service that answers (or fails) as told, a state disk that behaves like
 * agent/disk decides (format only blank, a wrong key is refused), and real files (status,
 * marker, kubelet certificate, join configuration) in a temporary folder. kubeadm is the
 * strict stand-in from test/fixtures.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hash } from '../../../lib/bytes.js';
import { fail, SextantError, type SextantErrorCode } from '../../../lib/errors.js';
import { run } from '../../../lib/exec.js';
import { DEFAULTS, resolveConfig, type AgentConfig } from '../../../agent/config/config.js';
import type { AgentDeps, AgentTpm, AttestOnceRequest, StateDiskOps } from '../../../agent/run/deps.js';
import type { RecoverySource, RecoveryStartOptions } from '../../../agent/run/recovery-source.js';
import { fileStatusStore, type AgentStatus } from '../../../agent/run/status.js';
import type { AttestResult } from '../../../agent/attest/client.js';
import type { BlockDeviceRow } from '../../../agent/disk/find.js';
import type { PrepareResult } from '../../../agent/disk/prepare.js';
import type { Runner } from '../../../agent/disk/runner.js';
import { FIXTURES } from '../../helpers/paths.js';

export const DISK_UUID = '6f1c0d2e-3b4a-4c5d-8e9f-a0b1c2d3e4f5';
export const CLUSTER = 'c1a55e0000000000000000000000000000000000000000000000000000000001';
export const KUBEADM = path.join(FIXTURES, 'kubeadm-standin/kubeadm');
export const TICKET = {
  apiServerEndpoint: '10.0.0.1:6443',
  token: 'abcdef.0123456789abcdef',
  tokenExpiresAt: '2030-01-01T00:00:00Z',
  caCertHash: 'sha256:' + '0f'.repeat(32),
  caCert: '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n',
  kubeletCert: '-----BEGIN CERTIFICATE-----\nMQ==\n-----END CERTIFICATE-----\n',
};

export class FakeTpm implements AgentTpm {
  pcr15: Buffer = Buffer.alloc(32);
  events: string[] = [];
  disposed = 0;
  async readPcrSha256(i: number) {
    if (i !== 15) throw new Error('only PCR 15 here');
    return Buffer.from(this.pcr15);
  }
  async pcrEvent(i: number, data: Uint8Array) {
    this.events.push(Buffer.from(data).toString('utf8'));
    this.pcr15 = hash('sha256', this.pcr15, hash('sha256', data));
  }
  async ekCertificate() {
    return new Uint8Array();
  }
  async akPublic() {
    return new Uint8Array();
  }
  async activateCredential() {
    return new Uint8Array();
  }
  async quote() {
    return { attest: new Uint8Array(), signature: new Uint8Array(), pcrs: {} };
  }
  async dispose() {
    this.disposed++;
  }
}

/** The disk the way agent/disk treats it: only blank is formatted, ours needs the key it was formatted with. */
export class FakeDisk implements StateDiskOps {
  content: 'blank' | 'ours' | 'foreign' = 'blank';
  headerKey?: Buffer;
  formats = 0;
  opened = false;
  calls: string[] = [];
  bindMounts: [string, string][] = [];
  failNext?: { op: 'prepare' | 'bindMount'; code: SextantErrorCode };

  async blockDevices(): Promise<BlockDeviceRow[]> {
    const row = (name: string, label: string | null, uuid: string | null): BlockDeviceRow => ({ name, path: `/dev/${name}`, type: 'part', size: 1 << 30, partlabel: label, parttype: null, partuuid: uuid, fstype: null, pkname: 'vda', ro: false });
    return [{ ...row('vda', null, null), type: 'disk' }, row('vda1', 'esp', '11111111-2222-4333-8444-555555555555'), row('vdb1', 'sextant-state', DISK_UUID)];
  }
  async classify(device: string) {
    this.calls.push(`classify ${device}`);
    switch (this.content) {
      case 'blank':
        return { kind: 'blank' as const };
      case 'ours':
        return { kind: 'ours' as const, meta: {} as never, filesystem: 'ext4' as const, tokenId: '0' };
      case 'foreign':
        return { kind: 'refuse' as const, code: 'DISK_FOREIGN_DATA' as const, found: 'TYPE=ext4 USAGE=filesystem' };
    }
  }
  async keyOpens(device: string, key: Uint8Array): Promise<boolean> {
    this.calls.push(`keyOpens ${device}`);
    return this.content === 'ours' && this.headerKey !== undefined && this.headerKey.equals(key);
  }
  async prepare(o: { device: string; key: Uint8Array; open: boolean; mapperName: string; mountpoint: string }): Promise<PrepareResult> {
    this.calls.push(`prepare ${o.device} open=${o.open}`);
    if (this.failNext?.op === 'prepare') {
      const { code } = this.failNext;
      this.failNext = undefined;
      fail(code, 'injected');
    }
    const steps: PrepareResult['steps'] = [];
    let found: PrepareResult['found'];
    if (this.content === 'foreign') fail('DISK_FOREIGN_DATA', 'refusing: foreign');
    let fresh = false;
    if (this.content === 'blank') {
      this.formats++;
      this.content = 'ours';
      this.headerKey = Buffer.from(o.key);
      steps.push('formatted', 'token-written');
      found = 'blank';
      fresh = true;
    } else {
      found = 'sextant';
      steps.push('header-verified');
      if (!this.headerKey!.equals(Buffer.from(o.key))) fail('DISK_WRONG_KEY', 'the key does not open the disk; the disk was left as it is');
    }
    steps.push('key-verified');
    if (!o.open) return { device: o.device, found, steps };
    await mkdir(o.mountpoint, { recursive: true });
    this.opened = true;
    steps.push('opened', ...(fresh ? (['mkfs', 'filesystem-recorded'] as const) : []), 'mounted');
    return { device: o.device, found, steps, mapper: `/dev/mapper/${o.mapperName}`, mountpoint: o.mountpoint };
  }
  async close() {
    this.calls.push('close');
    this.opened = false;
  }
  async bindMount(source: string, target: string) {
    if (this.failNext?.op === 'bindMount') {
      const { code } = this.failNext;
      this.failNext = undefined;
      fail(code, 'injected');
    }
    const already = this.bindMounts.some(([s, t]) => s === source && t === target);
    if (!already) this.bindMounts.push([source, target]);
    return already ? ('already' as const) : ('mounted' as const);
  }
}

export class FakeKeyService {
  calls: AttestOnceRequest[] = [];
  /** Codes to fail with, one per call, before answering. */
  failures: SextantErrorCode[] = [];
  clusterId = CLUSTER;
  keyByte = 0x42;
  ticket: typeof TICKET | undefined = TICKET;
  confirms: string[] = [];
  withConfirm = false;
  /** Every disk key handed to the agent (to check that the run wiped each one). */
  released: Buffer[] = [];
  endpoint = 'https://127.0.0.1:1';
  async attestOnce(_tpm: AgentTpm, req: AttestOnceRequest): Promise<AttestResult> {
    this.calls.push(req);
    const code = this.failures.shift();
    if (code) throw new SextantError({ code, message: `injected ${code}` });
    // As keyservice/attestor.ts: a join ticket only for a join, never for a rejoin.
    const confirm = this.withConfirm ? { id: (this.calls.length % 16).toString(16).repeat(32), expiresAt: '2030-01-01T00:00:00Z' } : undefined;
    const diskKey = Buffer.alloc(32, this.keyByte);
    this.released.push(diskKey);
    return { diskKey, clusterId: this.clusterId, joinTicket: req.role === 'join' ? this.ticket : undefined, confirm, warnings: [], attempts: 1, endpoint: this.endpoint };
  }
}

export interface World {
  dir: string;
  config: AgentConfig;
  tpm: FakeTpm;
  disk: FakeDisk;
  ks: FakeKeyService;
  records: Record<string, unknown>[];
  notes: { ready?: boolean; status?: string }[];
  sleeps: number[];
  execCalls: string[][];
  kubeadmRecord: string;
  bootId: string;
  /** Every kubelet private key (PEM bytes) the agent made. */
  kubeletKeys: Buffer[];
  recovery?: (o: RecoveryStartOptions) => RecoverySource;
  /** Makes the named dependency throw once (a crash in the middle of a step). */
  crashAt?: 'openTpm' | 'inventory' | 'classify' | 'attest' | 'prepare' | 'lock' | 'kubeadm' | 'done-notify';
  deps(): AgentDeps;
  status(): Promise<AgentStatus>;
  cleanup(): Promise<void>;
}

export async function makeWorld(overrides: Record<string, unknown> = {}): Promise<World> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-agentrun-'));
  const file = {
    keyservice: { url: 'https://127.0.0.1:1', fingerprint: 'sha256:' + 'ab'.repeat(32) },
    node: { name: 'node-1' },
    stateDisk: {
      mountpoint: path.join(dir, 'state'),
      bindMounts: [
        { source: 'kubelet', target: path.join(dir, 'var/lib/kubelet') },
        { source: 'kubernetes', target: path.join(dir, 'etc/kubernetes') },
      ],
    },
    join: { kubeadm: KUBEADM, configPath: path.join(dir, 'run/kubeadm-join.yaml'), retryDelayMs: 10, kubeletPkiDir: path.join(dir, 'var/lib/kubelet/pki'), startKubelet: ['true'] },
    retry: { initialMs: 1000, maxMs: 8000 },
    statusFile: path.join(dir, 'run/agent-status.json'),
    ...overrides,
  };
  const config = resolveConfig(file, '');
  let clock = Date.parse('2026-11-27T00:00:00Z');
  const w: World = {
    dir,
    config,
    tpm: new FakeTpm(),
    disk: new FakeDisk(),
    ks: new FakeKeyService(),
    records: [],
    notes: [],
    sleeps: [],
    execCalls: [],
    kubeadmRecord: path.join(dir, 'kubeadm-calls.jsonl'),
    bootId: 'boot-1',
    kubeletKeys: [],
    deps() {
      const crash = (at: World['crashAt']) => {
        if (w.crashAt === at) {
          w.crashAt = undefined;
          // A final error (not retried within the run): TOOL_MISSING is the one kubeadm's retry loop rethrows.
          throw new SextantError({ code: at === 'kubeadm' ? 'TOOL_MISSING' : 'IO_FAILED', message: `injected crash at ${at}` });
        }
      };
      const exec: Runner = async (cmd, args, opts) => {
        w.execCalls.push([cmd, ...args]);
        if (cmd === KUBEADM && args[0] === 'join') crash('kubeadm');
        return run(cmd, args, { ...opts, env: { KUBEADM_STANDIN_RECORD: w.kubeadmRecord } });
      };
      const ks = w.ks;
      return {
        loadConfig: async () => ({ config: w.config, sources: ['test'] }),
        bootId: async () => w.bootId,
        openStatus: fileStatusStore,
        inventory: async () => {
          crash('inventory');
          return { vendor: 'QEMU', model: 'Standard PC', disks: [] };
        },
        openTpm: async () => {
          crash('openTpm');
          const t = w.tpm;
          return {
            ...({} as AgentTpm),
            readPcrSha256: (i: number) => t.readPcrSha256(i),
            pcrEvent: async (i: number, d: Uint8Array) => {
              crash('lock');
              return t.pcrEvent(i, d);
            },
            ekCertificate: () => t.ekCertificate(),
            akPublic: () => t.akPublic(),
            activateCredential: () => t.activateCredential(),
            quote: () => t.quote(),
            dispose: () => t.dispose(),
          };
        },
        keyService: () => ({
          attestOnce: (tpm, req) => {
            crash('attest');
            return ks.attestOnce(tpm, req);
          },
          ...(ks.withConfirm
            ? {
                confirmLock: async (_t: AgentTpm, session: { id: string }) => {
                  ks.confirms.push(session.id);
                  return { pcr15: w.tpm.pcr15.toString('hex'), attempts: 1 };
                },
              }
            : {}),
        }),
        startRecovery: w.recovery ? (o) => w.recovery!(o) : undefined,
        disk: {
          blockDevices: () => w.disk.blockDevices(),
          classify: (d) => {
            crash('classify');
            return w.disk.classify(d);
          },
          prepare: (o) => {
            crash('prepare');
            return w.disk.prepare(o);
          },
          keyOpens: (d, k) => w.disk.keyOpens(d, k),
          close: (m, p) => w.disk.close(),
          bindMount: (s, t) => w.disk.bindMount(s, t),
        },
        exec,
        eventLog: async () => undefined,
        kubeletKey: () => {
          const keyPem = Buffer.from('-----BEGIN EC PRIVATE KEY-----\nMg==\n-----END EC PRIVATE KEY-----\n');
          w.kubeletKeys.push(keyPem);
          return { csrPem: '-----BEGIN CERTIFICATE REQUEST-----\nMA==\n-----END CERTIFICATE REQUEST-----\n', keyPem };
        },
        hostname: () => 'host',
        clock: {
          now: () => new Date((clock += 7)),
          sleep: async (ms) => {
            w.sleeps.push(ms);
            clock += ms;
          },
        },
        random: () => 0.5,
        log: (r) => w.records.push(r),
        debug: () => {},
        notify: async (m) => {
          if (m.ready) crash('done-notify');
          w.notes.push(m);
        },
      };
    },
    status: async () => JSON.parse(await readFile(config.statusFile, 'utf8')) as AgentStatus,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
  return w;
}

export const DEFAULT_STATUS_FILE = DEFAULTS.statusFile;
