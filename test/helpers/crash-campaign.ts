/**
 * kill -9 of the real `sextant keyservice` process at random moments under a bounded stream
 * of real attestations (a live swtpm through the koffi -> ESYS engine: fresh nonce, credential
 * activation and quote every time, with a matching event log). A kill comes at a uniformly
 * random moment, during the start (20%), or aimed at 0-25 ms after an agent sent its 1st-4th round 2
 * (while the release record is written). Then:
 *
 * - every restart must come up (a crash never leaves an unstartable audit log);
 * - `sextant keyservice audit verify` passes after every kill;
 * - every release a client saw (it opened the sealed answer) has its release record;
 * - the disk key for a UUID never changes.
 *
 * Used by test/integration/keyservice-crash.test.ts (a few kills) and
 * scripts/keyservice-crash-campaign.mjs (>= 50).
 */
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import { readAuditRecords } from '../../keyservice/audit/log.js';
import { replaySha256 } from '../../keyservice/service.js';
import { hash, toHex } from '../../lib/bytes.js';
import { run } from '../../lib/exec.js';
import { attestSteps } from './attest-steps.js';
import { buildEventLog, EV_EVENT_TAG, EV_NO_ACTION, EV_SEPARATOR, type SynthEvent } from './eventlog.js';
import { measurementsKeys, writeSignedMeasurements } from './keyservice-fixture.js';
import type { KeyServiceStarted } from './keyservice-process.js';
import { SEXTANT_BIN } from './paths.js';
import { startSwtpm } from './swtpm.js';

export interface CampaignOptions {
  kills: number;
  /** Concurrent simulated agents (sharing one swtpm). */
  agents?: number;
  disks?: number;
  seed?: number;
  /** The final, not killed run goes on until this many releases were seen in all. */
  minReleases?: number;
  log?: (line: string) => void;
  /** Run the service with --store etcd on these endpoints (the audit chain is read from etcd; no torn tails to inject). */
  etcdEndpoints?: string[];
}

export interface CampaignResult {
  seed: number;
  kills: number;
  /** Kills that hit the process before it printed its start line. */
  killsDuringStartup: number;
  /** Kills aimed at 0-25 ms after an agent sent its 1st-4th round 2 since the start. */
  killsInRoundTwo: number;
  restarts: number;
  restartsOk: number;
  verifyRuns: number;
  verifyOk: number;
  releasesSeen: number;
  releasesMissing: number;
  keysChanged: number;
  records: number;
  /** Torn tails found and cut on a start (tail-cut records). */
  tailCuts: number;
  /** Partial lines appended after a kill, as a kill inside write() leaves them. */
  tornInjected: number;
  evidenceBlobs: number;
  failures: string[];
  seconds: number;
}

const EVENTS: SynthEvent[] = [
  { pcr: 4, type: EV_SEPARATOR, data: Buffer.alloc(4) },
  { pcr: 4, type: EV_EVENT_TAG, data: Buffer.from('uki authenticode stand-in') },
  { pcr: 9, type: EV_EVENT_TAG, data: Buffer.from('console=ttyS0 root=/dev/vda2') },
];

/** mulberry32: a reproducible stream of kill moments from the reported seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Child {
  child: ResultPromise;
  started: Promise<KeyServiceStarted>;
}

function spawn(args: string[]): Child {
  const child = execa(process.execPath, [SEXTANT_BIN, 'keyservice', ...args, '--json'], { reject: false });
  const started = new Promise<KeyServiceStarted>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        try {
          const first = JSON.parse(buf.slice(0, nl)) as KeyServiceStarted;
          // A refusal to start is printed as {"ok":false,"code",...} on the same line.
          if (first.ok) resolve(first);
          else reject(new Error(`keyservice refused to start: ${buf.slice(0, nl)}`));
        } catch (e) {
          reject(e as Error);
        }
      }
    });
    void child.then((r) => reject(new Error(`keyservice exited (${String(r.exitCode ?? r.signal)}): ${String(r.stdout)} ${String(r.stderr)}`)));
  });
  started.catch(() => undefined);
  return { child, started };
}

export async function runCrashCampaign(o: CampaignOptions): Promise<CampaignResult> {
  const t0 = Date.now();
  const seed = o.seed ?? (Date.now() & 0xffffffff);
  const rnd = prng(seed);
  const say = o.log ?? (() => undefined);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-crash-'));
  const sw = await startSwtpm();
  const res: CampaignResult = { seed, kills: 0, killsDuringStartup: 0, killsInRoundTwo: 0, restarts: 0, restartsOk: 0, verifyRuns: 0, verifyOk: 0, releasesSeen: 0, releasesMissing: 0, keysChanged: 0, records: 0, tailCuts: 0, tornInjected: 0, evidenceBlobs: 0, failures: [], seconds: 0 };
  let tpm: EngineAttestationTpm | undefined;
  let current: Child | undefined;
  try {
    for (const e of EVENTS) await run('tpm2_pcrextend', [`${e.pcr}:sha256=${toHex(hash('sha256', e.data))}`], { env: { TPM2TOOLS_TCTI: sw.tcti } });
    const eventLog = buildEventLog(EVENTS);
    const replayed = replaySha256(eventLog).pcrs;
    const keys = await measurementsKeys(dir);
    const measurements = path.join(dir, 'measurements.json');
    await writeSignedMeasurements(measurements, keys.keyPem, { '4': { expected: replayed['4'], enforced: true }, '9': { expected: replayed['9'], enforced: true } });
    const state = path.join(dir, 'state');
    const auditLog = path.join(state, 'audit.log');
    const config = path.join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ rateLimit: { burst: 100_000, perSecond: 100_000 } }));
    const store = o.etcdEndpoints ? ['--store', 'etcd', '--etcd-endpoints', o.etcdEndpoints.join(',')] : [];
    /** The log's records: the state dir's file, or an export of the chain in etcd. */
    const auditRecords = async () => {
      if (!o.etcdEndpoints) return readAuditRecords(auditLog);
      const out = path.join(dir, `export-${res.verifyRuns}-${Date.now()}.log`);
      await execa(process.execPath, [SEXTANT_BIN, 'keyservice', 'audit', 'export', out, ...store, '--json']);
      return readAuditRecords(out);
    };
    const args = [...store, '--config', config, '--listen', '127.0.0.1:0', '--state-dir', state, '--measurements', measurements, '--measurements-key', keys.pubPem, '--ek-ca', sw.caCertPath, '--ek-ca', sw.issuerCertPath];
    tpm = await EngineAttestationTpm.open(sw.tcti);
    const disks = Array.from({ length: o.disks ?? 4 }, (_, i) => `c0a5e000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`);
    const keyOf = new Map<string, string>();
    let tornPending = false;
    const roundTwo = (() => {
      let waiters: (() => void)[] = [];
      return {
        notify: () => {
          const w = waiters;
          waiters = [];
          // After the request has gone out (mutate runs just before the POST).
          setImmediate(() => w.forEach((f) => f()));
        },
        next: () => new Promise<void>((r) => waiters.push(r)),
      };
    })();
    const seen: { sessionId: string; diskUuid: string }[] = [];

    const verify = async (when: string): Promise<void> => {
      res.verifyRuns++;
      const v = await execa(process.execPath, [SEXTANT_BIN, 'keyservice', 'audit', 'verify', ...(o.etcdEndpoints ? store : [auditLog]), '--json'], { reject: false });
      if (v.exitCode === 0) res.verifyOk++;
      else res.failures.push(`audit verify after ${when}: ${v.stdout} ${v.stderr}`);
    };
    const checkReleases = async (when: string): Promise<void> => {
      const released = new Set((await auditRecords()).filter((r) => r.decision === 'release').map((r) => `${String(r.sessionId)} ${String(r.diskUuid)}`));
      for (const s of seen.splice(0)) {
        res.releasesSeen++;
        if (!released.has(`${s.sessionId} ${s.diskUuid}`)) {
          res.releasesMissing++;
          res.failures.push(`${when}: release of ${s.diskUuid} (session ${s.sessionId}) seen by the client but not in the audit log`);
        }
      }
    };

    /** Agents attest in a loop until `stop`; a release counts once the sealed answer opened. */
    const agents = (ep: { url: string; fingerprint: string }, stop: { now: boolean }) =>
      Array.from({ length: o.agents ?? 3 }, async () => {
        while (!stop.now) {
          const diskUuid = disks[Math.floor(rnd() * disks.length)];
          let sessionId = '';
          try {
            const r = await attestSteps({ ...ep, timeoutMs: 10_000 }, tpm!, {
              diskUuid,
              // Mostly the same log (stored once), sometimes one with a fresh 16 KiB EV_NO_ACTION
              // event (not extended): a new evidence record, a longer write to be cut by a kill.
              eventLog: rnd() < 0.3 ? buildEventLog([...EVENTS, { pcr: 0, type: EV_NO_ACTION, data: randomBytes(16_384) }]) : eventLog,
              mutate: (req) => {
                sessionId = req.sessionId;
                roundTwo.notify();
                return req;
              },
            });
            seen.push({ sessionId, diskUuid });
            const k = toHex(hash('sha256', Buffer.from(r.secrets.diskKey, 'base64')));
            if (keyOf.has(diskUuid) && keyOf.get(diskUuid) !== k) {
              res.keysChanged++;
              res.failures.push(`disk key of ${diskUuid} changed`);
            }
            keyOf.set(diskUuid, k);
          } catch {
            // The service was killed under this request: no release seen.
            await sleep(20);
          }
        }
      });

    for (let k = 0; k <= o.kills; k++) {
      const last = k === o.kills;
      current = spawn(args);
      if (!last && k > 0 && rnd() < 0.2) {
        // Somewhere in the start: reading the state, opening (and repairing) the log, listening.
        const first = await Promise.race([current.started.then(() => 'up', () => 'exited'), sleep(100 + rnd() * 900).then(() => 'timer')]);
        if (first === 'exited') {
          res.failures.push(`start ${k} exited on its own: ${await current.started.catch((e: Error) => e.message)}`);
          break;
        }
        if (first === 'timer') res.killsDuringStartup++;
        else tornPending = false;
        current.child.kill('SIGKILL');
        await current.child;
      } else {
        if (k > 0) res.restarts++;
        let started: KeyServiceStarted;
        try {
          started = await current.started;
          if (k > 0) res.restartsOk++;
          tornPending = false; // the start cut it
        } catch (e) {
          res.failures.push(`restart ${k} did not come up: ${(e as Error).message}`);
          break;
        }
        const stop = { now: false };
        const running = agents({ url: started.listening, fingerprint: started.fingerprint }, stop);
        if (last) {
          // Run on until the campaign has seen `minReleases` releases (a loaded CI host can be
          // slow enough for the kills to leave few), at most 120 s.
          const until = Date.now() + 120_000;
          await sleep(1500);
          while (res.releasesSeen + seen.length < (o.minReleases ?? 0) && Date.now() < until) await sleep(200);
        }
        else if (rnd() < 0.5) await sleep(200 + rnd() * 2300);
        else {
          // Aimed: a few milliseconds after an agent sent its 1st-4th round 2, while the
          // service verifies, writes and fsyncs the release record (or has just answered).
          res.killsInRoundTwo++;
          const nth = 1 + Math.floor(rnd() * 4);
          await Promise.race([(async () => { for (let i = 0; i < nth; i++) await roundTwo.next(); })(), sleep(10_000)]);
          await sleep(rnd() * 25);
        }
        current.child.kill(last ? 'SIGTERM' : 'SIGKILL');
        if (last) stop.now = true;
        await current.child;
        stop.now = true;
        await Promise.all(running);
      }
      if (!last) res.kills++;
      await verify(last ? 'the final stop' : `kill ${k + 1}`);
      await checkReleases(last ? 'the final stop' : `kill ${k + 1}`);
      if (!last && !tornPending && !o.etcdEndpoints && rnd() < 0.15) {
        // A kill in the middle of a write() leaves a partial line; landing there by chance is
        // rare, so some kills are followed by one (the next start must cut and audit it).
        await appendFile(auditLog, '{"seq":' + randomBytes(1 + Math.floor(rnd() * 300)).toString('base64'));
        res.tornInjected++;
        tornPending = true;
      }
      say(`kill ${k + 1}/${o.kills}: releases seen so far ${res.releasesSeen}, missing ${res.releasesMissing}`);
    }
    current = undefined;
    const recs = await auditRecords();
    res.records = recs.length;
    res.tailCuts = recs.filter((r) => r.decision === 'tail-cut').length;
    res.evidenceBlobs = recs.filter((r) => r.decision === 'evidence').length;
  } finally {
    if (current) {
      current.child.kill('SIGKILL');
      await current.child;
    }
    await tpm?.dispose();
    await sw.stop();
    await rm(dir, { recursive: true, force: true });
    res.seconds = Math.round((Date.now() - t0) / 1000);
  }
  return res;
}
