import test from 'ava';
import { isSextantError } from '../../lib/errors.js';
import { resolveTcti, DEFAULT_TCTI } from '../../tpm/engine/tcti.js';
import { tssRcName } from '../../tpm/engine/tss-rc.js';
import { tssError } from '../../tpm/engine/errors.js';
import { SerialQueue } from '../../tpm/engine/queue.js';
import { ObjectSlots } from '../../tpm/client/slots.js';
import { derToPem, trimDer } from '../../tpm/client/ek-cert.js';

test('the TCTI comes from the option, then $SEXTANT_TCTI, then the kernel resource manager', (t) => {
  t.is(resolveTcti('swtpm:host=127.0.0.1,port=2321', { SEXTANT_TCTI: 'device:/dev/tpm0' }), 'swtpm:host=127.0.0.1,port=2321');
  t.is(resolveTcti(undefined, { SEXTANT_TCTI: 'device:/dev/tpm0' }), 'device:/dev/tpm0');
  t.is(resolveTcti(undefined, { SEXTANT_TCTI: '' }), DEFAULT_TCTI);
  t.is(resolveTcti(undefined, {}), 'device:/dev/tpmrm0');
  for (const bad of ['', '../lib:x', 'swtpm;id', 'Device:/dev/tpm0', 'swtpm:a\nb']) {
    t.throws(() => resolveTcti(bad, {}), { code: 'INVALID_ARGUMENT' }, bad);
  }
});

test('tpm2-tss return codes get the names tpm2-tss documents', (t) => {
  t.is(tssRcName(0x70007), 'TSS2_ESYS_RC_BAD_SEQUENCE');
  t.is(tssRcName(0xa000a), 'TSS2_TCTI_RC_IO_ERROR');
  t.is(tssRcName(0x90006), 'TSS2_MU_RC_INSUFFICIENT_BUFFER');
  t.is(tssRcName(0x8000b), 'TSS2_SYS_RC_BAD_VALUE');
  t.is(tssRcName(0x7ffff), 'TSS2_ESYS_RC_0xffff');
  const e = tssError('Tss2_Tcti_Quote', 0x70007);
  t.is(e.code, 'TPM_TSS');
  t.regex(e.message, /Tss2_Tcti_Quote: TSS2_ESYS_RC_BAD_SEQUENCE/);
  t.is(tssError('Tss2_Tcti_GetRandom', 0xa000a).code, 'TPM_UNAVAILABLE');
  const tpmError = tssError('Tss2_Tcti_CreatePrimary', 0x902);
  t.is(tpmError.code, 'TPM_RC');
  t.regex(tpmError.message, /Tss2_Tcti_CreatePrimary: TPM_RC_OBJECT_MEMORY/);
  t.regex(tssError('Tss2_Tcti_NV_Read', 0xb0143).message, /TPM_RC_COMMAND_CODE/, 'the kernel resource manager answers in TPM format');
});

test('the queue runs jobs one at a time, in order, and survives failures', async (t) => {
  const q = new SerialQueue();
  const events: string[] = [];
  let active = 0;
  const job = (name: string, ms: number, fail = false) => async () => {
    active++;
    t.is(active, 1, 'never two jobs at once');
    events.push(`start ${name}`);
    await new Promise((r) => setTimeout(r, ms));
    events.push(`end ${name}`);
    active--;
    if (fail) throw new Error(name);
    return name;
  };
  const results = await Promise.allSettled([q.run(job('a', 20)), q.run(job('b', 1, true)), q.run(job('c', 5))]);
  t.deepEqual(events, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  t.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
});

test('a job that queues another job on its own queue is refused instead of deadlocking', async (t) => {
  const q = new SerialQueue();
  const inner = await q.run(() => q.run(async () => 1).then(() => 'ran', (e: unknown) => (isSextantError(e, 'INTERNAL') ? 'refused' : 'other')));
  t.is(inner, 'refused');
  t.false(q.insideJob);
});

test('EK certificate NV padding is trimmed to the DER SEQUENCE', (t) => {
  const der = Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00]), Buffer.alloc(256, 7)]);
  t.deepEqual(Buffer.from(trimDer(Buffer.concat([der, Buffer.alloc(100)]), 0x01c00002)), der);
  t.throws(() => trimDer(der.subarray(0, 200), 0x01c00002), { code: 'TPM_NO_EK_CERT' });
  t.throws(() => trimDer(Buffer.alloc(10), 0x01c00002), { code: 'TPM_NO_EK_CERT' });
  t.regex(derToPem(der), /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/]{64}\n/);
});

test('object slots: never more held than the TPM has, taken all at once, nesting refused', async (t) => {
  const slots = new ObjectSlots(3);
  let held = 0;
  let peak = 0;
  const use = (n: number, ms: number) =>
    slots.with(n, async () => {
      held += n;
      peak = Math.max(peak, held);
      await new Promise((r) => setTimeout(r, ms));
      held -= n;
      return n;
    });
  const results = await Promise.all([use(1, 20), use(2, 10), use(2, 5), use(1, 1), use(3, 1)]);
  t.deepEqual(results, [1, 2, 2, 1, 3]);
  t.is(peak, 3);
  await t.throwsAsync(slots.with(4, async () => 0), { code: 'TPM_RC' });
  await t.throwsAsync(slots.with(1, () => slots.with(1, async () => 0)), { code: 'INTERNAL' });
});
