import { fail, SextantError } from '../../lib/errors.js';
import type { AgentDeps, AgentTpm, KeyServiceClient } from './deps.js';
import { RunSecrets } from './secrets.js';
import { errorFields, STEP_TABLE, type RunContext } from './steps.js';
import type { AgentStatus, StatusStore, StepName } from './status.js';

/** Errors of a later step that are the configuration's, not the moment's: exit 2 like a config error. */
const PERMANENT_STEP_CODES: ReadonlySet<string> = new Set(['SNP_EVIDENCE_UNAVAILABLE']);

export interface RunResult {
  ok: boolean;
  /** 0 done, 2 bad configuration (systemd does not restart), 1 anything else (systemd restarts). */
  exitCode: 0 | 1 | 2;
  step: StepName;
  path?: AgentStatus['path'];
  code?: string;
  message?: string;
}

/**
 * The boot agent: config, then the steps of STEP_TABLE (agent/run/steps.ts) in order. Each
 * step's completion is persisted (status file, atomically replaced), so a restart in the same
 * boot skips what is done and redoes only what needs the secrets, which never leave memory
 * (RunSecrets, wiped when the run ends, whatever way it ends).
 */
export async function runAgent(deps: AgentDeps): Promise<RunResult> {
  const secrets = new RunSecrets();
  let status: AgentStatus | undefined;
  let store: StatusStore | undefined;
  let tpm: Promise<AgentTpm> | undefined;
  let keyService: KeyServiceClient | undefined;
  const now = () => deps.clock.now();
  const forgetTpm = (e: unknown): never => {
    tpm = undefined; // not opened: the next step may try again, and there is nothing to close
    throw e;
  };
  // One write at a time: a retry report of the losing side of the recovery race may still be
  // saving when the step completes.
  let saving: Promise<void> = Promise.resolve();
  const save = (): Promise<void> => {
    const next = saving.then(async () => {
      if (!status || !store) return;
      status.updatedAt = now().toISOString();
      await store.save(status);
    });
    saving = next.catch(() => {});
    return next;
  };

  /** Runs one step and records it: running, then done with its detail or failed with its error. */
  const record = async <T extends Record<string, unknown>>(name: StepName, body: () => Promise<T>): Promise<T> => {
    const t0 = now();
    const startedAt = t0.toISOString();
    const finished = () => ({ startedAt, finishedAt: now().toISOString(), ms: now().getTime() - t0.getTime() });
    if (status) {
      Object.assign(status, { step: name, outcome: 'running' });
      status.steps[name] = { state: 'running', startedAt };
      await save();
    }
    await deps.notify({ status: `sextant agent: ${name}` });
    try {
      const detail = await body();
      const f = finished();
      if (status) {
        status.steps[name] = { state: 'done', ...f, detail };
        await save();
      }
      deps.log({ step: name, outcome: 'done', ms: f.ms, ...detail });
      return detail;
    } catch (e) {
      const err = errorFields(e);
      const f = finished();
      if (status) {
        status.steps[name] = { state: 'failed', ...f };
        status.outcome = 'failed';
        status.lastError = { step: name, ...err, at: f.finishedAt };
        await save().catch((se) => deps.debug(`could not save the status: ${String(se)}`));
      }
      deps.log({ step: name, outcome: 'failed', ms: f.ms, ...err });
      await deps.notify({ status: `sextant agent: ${name} failed: ${err.code}` });
      throw e;
    }
  };

  let current: StepName = 'config';
  try {
    // config: also decides whether this is a restart within the same boot.
    const bootId = await deps.bootId();
    let loaded: Awaited<ReturnType<AgentDeps['loadConfig']>> | undefined;
    const cfgDetail = await record('config', async () => {
      loaded = await deps.loadConfig();
      const { config, sources } = loaded;
      return { sources, keyservice: config.keyservice.urls, role: config.node.role, statusFile: config.statusFile, deviceMapper: config.stateDisk.deviceMapper, recovery: config.recovery.enabled };
    });
    const config = loaded?.config ?? fail('INTERNAL', 'the config step returned no configuration');
    store = deps.openStatus(config.statusFile);
    const previous = await store.load().catch((e) => {
      deps.debug(`ignoring an unreadable status file: ${String(e)}`);
      return undefined;
    });
    const t = now().toISOString();
    const s: AgentStatus =
      previous && previous.bootId === bootId
        ? { ...previous, runs: previous.runs + 1, outcome: 'running' }
        : { v: 1, bootId, runs: 1, startedAt: t, updatedAt: t, step: 'config', outcome: 'running', steps: {} };
    status = s;
    s.steps.config = { state: 'done', startedAt: t, finishedAt: t, ms: 0, detail: cfgDetail };
    await save();
    if (s.runs > 1) deps.log({ step: 'config', outcome: 'resumed', run: s.runs, done: Object.entries(s.steps).filter(([, r]) => r?.state === 'done').map(([n]) => n) });

    if (s.steps.done?.state === 'done') {
      current = 'done';
      deps.log({ step: 'done', outcome: 'skipped', reason: 'already done in this boot' });
      s.outcome = 'done';
      await save();
      await deps.notify({ ready: true, status: 'sextant agent: done (earlier in this boot)' });
      return { ok: true, exitCode: 0, step: 'done', path: s.path };
    }

    const ctx: RunContext = { deps, config, status: s, secrets, nodeName: config.node.name ?? deps.hostname(), save, tpm: () => (tpm ??= deps.openTpm(config.tpm.tcti).catch(forgetTpm)), keyService: () => (keyService ??= deps.keyService(config)) };
    for (const step of STEP_TABLE) {
      current = step.name;
      if (step.needed(s)) await record(step.name, () => step.run(ctx));
      else deps.log({ step: step.name, outcome: 'skipped', reason: step.skipReason?.(s) ?? 'done earlier in this boot' });
    }
    s.outcome = 'done';
    await save();
    return { ok: true, exitCode: 0, step: 'done', path: s.path };
  } catch (e) {
    const err = errorFields(e);
    if (!status) {
      // No configuration, so no status file path of our own: leave the error where `agent status` looks by default.
      await deps
        .fallbackStatus?.()
        ?.save({ v: 1, bootId: await deps.bootId().catch(() => ''), runs: 1, startedAt: now().toISOString(), updatedAt: now().toISOString(), step: current, outcome: 'failed', steps: {}, lastError: { step: current, ...err, at: now().toISOString() } })
        .catch(() => {});
    }
    // A bad configuration, or one that names evidence this node cannot give: no restart fixes it.
    const configError = e instanceof SextantError && (current === 'config' ? e.isInputError : PERMANENT_STEP_CODES.has(e.code));
    return { ok: false, exitCode: configError ? 2 : 1, step: current, path: status?.path, ...err };
  } finally {
    secrets.wipeAll();
    if (tpm) await tpm.then((t) => t.dispose()).catch((e) => deps.debug(`TPM close: ${String(e)}`));
  }
}
