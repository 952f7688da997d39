import test from 'ava';
import { isSextantError } from '../../lib/errors.js';
import { Tpm } from '../../tpm/client/tpm.js';
import { quotePcrs } from '../../tpm/client/attest.js';
import { readEkCertificate } from '../../tpm/client/ek-cert.js';
import type { TpmTransport } from '../../tpm/commands/command.js';
import { useSwtpm } from '../helpers/swtpm.js';

const swtpm = useSwtpm(test);
const pcrs0to15 = Array.from({ length: 16 }, (_, i) => i);

test.serial('50 interleaved operations from 5 callers all succeed: no interleaved commands', async (t) => {
  const callers = await Promise.all(Array.from({ length: 5 }, () => Tpm.open({ tcti: swtpm().tcti })));
  try {
    const ops: (() => Promise<unknown>)[] = [
      () => callers[0].getRandom(48),
      () => callers[1].pcrRead({ sha1: pcrs0to15, sha256: Array.from({ length: 24 }, (_, i) => i) }),
      () => quotePcrs(callers[2], { qualifyingData: Buffer.from('nonce'), pcrs: { sha256: pcrs0to15 } }),
      () => callers[3].pcrEvent(16, Buffer.from('concurrent event')),
      () => readEkCertificate(callers[4], 'rsa'),
      () => callers[0].withEk('ecc', (ek) => callers[0].readPublic(ek.handle)),
      () => callers[1].properties(0x100, 8),
    ];
    // All 50 are started before any finishes: every caller has several calls in flight.
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => ops[i % ops.length]()));
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message)] : []));
    t.deepEqual(failures, []);
    t.deepEqual(await callers[0].transientHandles(), []);
    t.deepEqual(await callers[0].sessionHandles(), []);
  } finally {
    await Promise.all(callers.map((c) => c.close()));
  }
});

test.serial('the transport refuses commands outside the queue (the guard that keeps commands from interleaving)', async (t) => {
  const tpm = await Tpm.open({ tcti: swtpm().tcti });
  try {
    let leaked: TpmTransport | undefined;
    await tpm.run(async (e) => {
      leaked = e;
    });
    const error = await t.throwsAsync(leaked!.send(Buffer.from('80010000000c0000017b0008', 'hex')));
    t.true(isSextantError(error, 'INTERNAL'));
    await t.throwsAsync(tpm.run((e) => tpm.run(async () => e)), { code: 'INTERNAL' });
  } finally {
    await tpm.close();
  }
});

test.serial('1,000 quotes in a row leave no transient object and no session in the TPM', async (t) => {
  const tpm = await Tpm.open({ tcti: swtpm().tcti });
  try {
    const started = performance.now();
    for (let i = 0; i < 1000; i++) {
      await quotePcrs(tpm, { qualifyingData: Buffer.from(`nonce ${i}`), pcrs: { sha256: pcrs0to15 } });
    }
    const seconds = (performance.now() - started) / 1000;
    t.log(`1,000 quotes (create AK, quote, read PCRs 0-15, flush AK): ${seconds.toFixed(1)} s`);
    t.deepEqual(await tpm.transientHandles(), []);
    t.deepEqual(await tpm.sessionHandles(), []);
  } finally {
    await tpm.close();
  }
});

test.serial('transient objects left by a crashed process are flushed when the next context opens', async (t) => {
  const tpm = await Tpm.open({ tcti: swtpm().tcti });
  // Simulate a process that died holding keys: create two primaries and never flush them.
  await tpm.run(async (e) => {
    const { createPrimary } = await import('../../tpm/client/keys.js');
    const { akTemplate } = await import('../../tpm/ek/templates.js');
    await createPrimary(e, 'owner', akTemplate());
    await createPrimary(e, 'owner', akTemplate());
  });
  t.is((await tpm.transientHandles()).length, 2);
  await tpm.close();

  const lines: string[] = [];
  const next = await Tpm.open({ tcti: swtpm().tcti, log: (l) => lines.push(l) });
  try {
    t.deepEqual(await next.transientHandles(), []);
    t.regex(lines.join('\n'), /flushed 2 transient object/);
  } finally {
    await next.close();
  }
});
