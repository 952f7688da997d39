import test from 'ava';
import fc from 'fast-check';
import { isSextantError } from '../../lib/errors.js';
import { resolveTcti, DEFAULT_TCTI } from '../../tpm/engine/tcti.js';
import { tssRcName } from '../../tpm/engine/tss-rc.js';
import { esysError } from '../../tpm/engine/errors.js';
import { SerialQueue } from '../../tpm/engine/queue.js';
import { decodeCapability } from '../../tpm/engine/capability.js';
import { derToPem, trimDer } from '../../tpm/engine/ek-cert.js';

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
  const e = esysError('Esys_Quote', 0x70007);
  t.is(e.code, 'TPM_TSS');
  t.regex(e.message, /Esys_Quote: TSS2_ESYS_RC_BAD_SEQUENCE/);
  t.is(esysError('Esys_GetRandom', 0xa000a).code, 'TPM_UNAVAILABLE');
  t.is(esysError('Esys_Quote', 0x18b).code, 'TPM_RC');
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

test('capability data decodes handles, properties and PCR banks', (t) => {
  const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');
  t.deepEqual(decodeCapability(hex('00000001 00000002 80000000 80000001')), { kind: 'handles', handles: [0x80000000, 0x80000001] });
  t.deepEqual(decodeCapability(hex('00000006 00000001 0000012c 00000400')), {
    kind: 'properties',
    properties: [{ property: 0x12c, value: 1024 }],
  });
  t.deepEqual(decodeCapability(hex('00000005 00000002 0004 03 010000 000b 03 ffff00')), {
    kind: 'pcrs',
    banks: [
      { hashAlg: 4, pcrs: [0] },
      { hashAlg: 11, pcrs: Array.from({ length: 16 }, (_, i) => i) },
    ],
  });
  t.throws(() => decodeCapability(hex('00000001 00000002 80000000')), { code: 'TPM_UNMARSHAL' });
});

test('capability decoding of arbitrary bytes fails only with TPM_UNMARSHAL', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(1, 5, 6, 7), (tail, cap) => {
      const bytes = Buffer.concat([Buffer.from([0, 0, 0, cap]), tail]);
      try {
        decodeCapability(bytes);
      } catch (e) {
        if (!isSextantError(e, 'TPM_UNMARSHAL')) throw e;
      }
    }),
  );
  t.pass();
});

test('EK certificate NV padding is trimmed to the DER SEQUENCE', (t) => {
  const der = Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00]), Buffer.alloc(256, 7)]);
  t.deepEqual(Buffer.from(trimDer(Buffer.concat([der, Buffer.alloc(100)]), 0x01c00002)), der);
  t.throws(() => trimDer(der.subarray(0, 200), 0x01c00002), { code: 'TPM_NO_EK_CERT' });
  t.throws(() => trimDer(Buffer.alloc(10), 0x01c00002), { code: 'TPM_NO_EK_CERT' });
  t.regex(derToPem(der), /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/]{64}\n/);
});
