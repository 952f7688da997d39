/**
 * The post-lock confirm round on a real swtpm and a real key service on loopback: the agent
 * locks PCR 15 to the cluster, then proves it with a fresh quote by the AK the service
 * activated. The audit record must carry every quoted PCR (the end-to-end test reads PCR 15
 * from it). The agent side runs through tpm2-tools (attack pieces) and through the koffi ->
 * ESYS engine (the production path, whose AK is the same key after a reboot).
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { rebootSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { startSwtpmKeyService, type SwtpmKeyService } from '../helpers/swtpm-keyservice.js';
import { Tpm2ToolsAttester } from '../helpers/tpm2-tools-attester.js';
import { opensslClusterLock } from '../helpers/keyservice-fixture.js';
import type { RunningKeyService } from '../../keyservice/service.js';
import { readAuditRecords } from '../../keyservice/audit/log.js';
import { attest } from '../../agent/attest/client.js';
import { confirmLock } from '../../agent/attest/confirm.js';
import { EngineAttestationTpm } from '../../attestation/tpm/engine-tpm.js';
import { lockToCluster, type PcrLockTpm } from '../../agent/boot/cluster-lock.js';
import { postJson, type PinnedEndpoint } from '../../agent/attest/transport.js';
import { ROUTES, type ConfirmRequest, type ConfirmSession } from '../../protocol/messages.js';
import { confirmQualifyingData } from '../../protocol/seal.js';
import { assertNonceResponse } from '../../protocol/validate.js';

const DISK = '5a1e0c0d-1b2c-4d3e-8f40-516273849506';
let tpm: Swtpm;
let ta: Tpm2ToolsAttester;
let svc: RunningKeyService;
let ep: PinnedEndpoint;

let world: SwtpmKeyService | undefined;

test.before(async () => {
  world = await startSwtpmKeyService('ks-confirm-');
  ({ tpm, ta, svc, ep } = world);
});

test.after.always(async () => {
  await world?.stop();
});

/** PCR 15 through tpm2-tools (tpm2_pcrread / tpm2_pcrevent). */
const toolsLock = (t: Tpm2ToolsAttester): PcrLockTpm => ({
  readPcrSha256: async (i) => Buffer.from((await t.readPcrs())[String(i)], 'hex'),
  pcrEvent: (i, data) => t.pcrEvent(i, data),
});

async function auditRecords(): Promise<Record<string, unknown>[]> {
  return readAuditRecords(svc.auditLog);
}

/** One confirm request with knobs for attacks; returns the service's answer or throws its refusal. */
async function confirmStep(session: ConfirmSession, o: { nonce?: Buffer; akCtx?: string } = {}): Promise<{ nonce: Buffer; answer: unknown }> {
  let nonce = o.nonce;
  if (!nonce) {
    const n = await postJson(ep, ROUTES.nonce, {});
    assertNonceResponse(n);
    nonce = Buffer.from(n.nonce, 'base64');
  }
  const q = await ta.quote(confirmQualifyingData(session.id, nonce), o.akCtx);
  const req: ConfirmRequest = { v: 1, confirmId: session.id, nonce: nonce.toString('base64'), quoteAttest: Buffer.from(q.attest).toString('base64'), quoteSignature: Buffer.from(q.signature).toString('base64'), pcrs: q.pcrs };
  return { nonce, answer: await postJson(ep, ROUTES.confirm, req) };
}

let session: ConfirmSession;

test.serial('confirm before the lock is CLUSTER_LOCK_MISMATCH; after TPM2_PCR_Event(15, clusterId) it is audited as lock-confirmed with every quoted PCR', async (t) => {
  const r = await attest(ta, { endpoint: ep, diskUuid: DISK, role: 'join', nodeName: 'worker-1', retry: { attempts: 1 } });
  t.truthy(r.confirm);
  session = r.confirm!;
  await t.throwsAsync(confirmLock(ta, ep, session, { retry: { attempts: 1 } }), { code: 'CLUSTER_LOCK_MISMATCH' });
  t.is(await lockToCluster(toolsLock(ta), r.clusterId), 'extended');
  const lock = await opensslClusterLock(r.clusterId);
  const c = await confirmLock(ta, ep, session, { retry: { attempts: 1 } });
  t.is(c.pcr15, lock);
  t.is(c.clusterId, r.clusterId);
  const rec = (await auditRecords()).at(-1)!;
  t.like(rec, { decision: 'lock-confirmed', clusterId: r.clusterId, lockPcr15: lock, diskUuid: DISK, nodeName: 'worker-1', role: 'join' });
  // Every quoted PCR, as tpm2_pcrread reads them from the TPM, and PCR 15 = the documented lock.
  t.deepEqual(rec.pcrs, await ta.readPcrs());
  t.is((rec.pcrs as Record<string, string>)['15'], lock);
});

test.serial('a replayed confirm nonce (NONCE_REPLAYED), an unknown session (SESSION_UNKNOWN), a quote by an AK the service did not activate (QUOTE_SIGNATURE_INVALID)', async (t) => {
  const ok = await confirmStep(session);
  t.like(ok.answer, { ok: true });
  await t.throwsAsync(confirmStep(session, { nonce: ok.nonce }), { code: 'NONCE_REPLAYED' });
  await t.throwsAsync(confirmStep({ ...session, id: 'ab'.repeat(16) }), { code: 'SESSION_UNKNOWN' });
  const other = await ta.createOtherAk();
  await t.throwsAsync(confirmStep(session, { akCtx: other }), { code: 'QUOTE_SIGNATURE_INVALID' });
  const refusals = (await auditRecords()).filter((r) => r.decision === 'refuse' && r.round === 'confirm').map((r) => r.code);
  t.deepEqual(refusals, ['CLUSTER_LOCK_MISMATCH', 'NONCE_REPLAYED', 'SESSION_UNKNOWN', 'QUOTE_SIGNATURE_INVALID']);
});

test.serial('PCR 10 (the IMA runtime log: a Secure Boot kernel measures each module it loads) extended after the attestation: the confirm still holds', async (t) => {
  await ta.extendPcr(10, 'ab'.repeat(32));
  const c = await confirmLock(ta, ep, session, { retry: { attempts: 1 } });
  const rec = (await auditRecords()).at(-1)!;
  t.like(rec, { decision: 'lock-confirmed', clusterId: c.clusterId });
  const pcr10 = (await ta.readPcrs())['10'];
  t.not(pcr10, '0'.repeat(64));
  t.is((rec.pcrs as Record<string, string>)['10'], pcr10, 'the confirm record keeps the moved PCR 10');
});

test.serial('a PCR other than 10 and 15 extended after the attestation: CONFIRM_PCRS_CHANGED names it', async (t) => {
  await ta.extendPcr(9, 'cd'.repeat(32));
  const e = await t.throwsAsync(confirmLock(ta, ep, session, { retry: { attempts: 1 } }), { code: 'CONFIRM_PCRS_CHANGED' });
  t.regex(e!.message, /PCR 9 was 0{64}, now /);
});

test.serial('engine path: a rebooted node rejoins at PCR 15 = 0; a confirm from the next boot (same AK) is CONFIRM_REBOOTED', async (t) => {
  await rebootSwtpm(tpm);
  let e = await EngineAttestationTpm.open(tpm.tcti);
  let r;
  try {
    r = await attest(e, { endpoint: ep, diskUuid: DISK, role: 'rejoin', nodeName: 'worker-1', retry: { attempts: 1 } });
  } finally {
    await e.dispose();
  }
  t.is(r.joinTicket, undefined);
  await rebootSwtpm(tpm);
  e = await EngineAttestationTpm.open(tpm.tcti);
  try {
    t.is(await lockToCluster(e, r.clusterId), 'extended');
    await t.throwsAsync(confirmLock(e, ep, r.confirm, { retry: { attempts: 1 } }), { code: 'CONFIRM_REBOOTED' });
  } finally {
    await e.dispose();
  }
});
