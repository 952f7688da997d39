/**
 * TPM operations through sextant's engine (TypeScript commands over the koffi -> TCTI transport, one connection kept open) against the
 * same operations as tpm2-tools processes, on one swtpm: quote latency and PCR read of 0-15.
 * The ratios say what keeping the context in-process buys the agent.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../lib/exec.js';
import { quotePcrs } from '../tpm/client/attest.js';
import { readEkCertificate } from '../tpm/client/ek-cert.js';
import { Tpm } from '../tpm/client/tpm.js';
import { makeCredential } from '../tpm/credential/make-credential.js';
import { startSwtpm } from '../test/helpers/swtpm.js';
import { SEXTANT_BIN } from '../test/helpers/paths.js';
import { median, report, timeItAsync } from './harness.js';

const RUNS = { minRuns: 30 };
const pcrs0to15 = Array.from({ length: 16 }, (_, i) => i);
const nonce = 'aa'.repeat(32);
// tpm2-tools 5.4 takes no ranges in PCR lists.
const toolPcrList = `sha256:${pcrs0to15.join(',')}`;

const swtpm = await startSwtpm();
const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-bench-tpm-'));
try {
  const env = swtpm.env;
  const tpm = await Tpm.open({ tcti: swtpm.tcti });
  let engineQuote: number;
  let engineQuoteLoaded: number;
  let enginePcrRead: number;
  let eventPlain: number;
  let eventSalted: number;
  let activation: number;
  try {
    engineQuote = await timeItAsync(() => quotePcrs(tpm, { qualifyingData: Buffer.from(nonce, 'hex'), pcrs: { sha256: pcrs0to15 } }), RUNS);
    engineQuoteLoaded = await tpm.withAk((ak) =>
      timeItAsync(() => tpm.quote(ak.handle, { qualifyingData: Buffer.from(nonce, 'hex'), pcrs: { sha256: pcrs0to15 } }), RUNS),
    );
    enginePcrRead = await timeItAsync(() => tpm.pcrRead({ sha256: pcrs0to15 }), RUNS);
    // What the protected sessions cost: PCR_Event with a password vs in a session salted to
    // the EK (the EK created and flushed each time, as the cluster lock does).
    const ekCert = (await readEkCertificate(tpm, 'rsa')).der;
    eventPlain = await timeItAsync(() => tpm.pcrEvent(16, Buffer.from('bench')), RUNS);
    eventSalted = await timeItAsync(() => tpm.pcrEventProtected(16, Buffer.from('bench'), { kind: 'rsa', certificate: ekCert }), RUNS);
    activation = await timeItAsync(
      () =>
        tpm.withEkAndAk('rsa', (ek, ak) =>
          tpm.activateCredential({ activate: ak, ek, ekCertificate: ekCert, ...makeCredential({ ekPublic: ek.public, akName: ak.name, secret: Buffer.alloc(32, 7) }) }),
        ),
      RUNS,
    );
  } finally {
    await tpm.close();
  }

  // tpm2-tools: the same AK template, saved as a context file once; each tpm2_quote loads it,
  // quotes, reads the PCRs (-o) and exits. Without a resource manager tpm2-tools leave that
  // object loaded, so it is flushed after each run, outside the timed part.
  await run('tpm2_createprimary', ['-C', 'o', '-G', 'ecc256:ecdsa-sha256:null', '-a',
    'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign', '-c', 'ak.ctx'], { cwd: dir, env });
  await run('tpm2_flushcontext', ['-t'], { env });
  const toolQuoteTimes: number[] = [];
  for (let i = 0; i < RUNS.minRuns; i++) {
    const t0 = process.hrtime.bigint();
    await run('tpm2_quote', ['-c', 'ak.ctx', '-l', toolPcrList, '-q', nonce, '-m', 'attest.bin', '-s', 'sig.bin', '-o', 'pcrs.bin', '-g', 'sha256'], { cwd: dir, env });
    toolQuoteTimes.push(Number(process.hrtime.bigint() - t0) / 1e9);
    await run('tpm2_flushcontext', ['-t'], { env });
  }
  const toolQuote = median(toolQuoteTimes);
  const toolPcrRead = await timeItAsync(() => run('tpm2_pcrread', [toolPcrList], { env }), RUNS);
  const cliQuote = await timeItAsync(() => run(process.execPath, [SEXTANT_BIN, 'tpm', 'quote', '--nonce', nonce, '--json'], { env }), { minRuns: 10 });

  report('tpm (swtpm, median of >= 30 runs)', [
    { name: 'quote+PCRs, engine (AK create/flush incl.)', value: engineQuote * 1000, unit: 'ms' },
    { name: 'quote, engine, AK already loaded', value: engineQuoteLoaded * 1000, unit: 'ms' },
    { name: 'quote+PCRs, tpm2_quote process', value: toolQuote * 1000, unit: 'ms' },
    { name: 'quote+PCRs, `sextant tpm quote` process', value: cliQuote * 1000, unit: 'ms' },
    { name: 'ratio tpm2_quote process / engine', value: toolQuote / engineQuote, unit: 'x' },
    { name: 'PCR read 0-15, engine', value: enginePcrRead * 1000, unit: 'ms' },
    { name: 'PCR read 0-15, tpm2_pcrread process', value: toolPcrRead * 1000, unit: 'ms' },
    { name: 'ratio tpm2_pcrread process / engine', value: toolPcrRead / enginePcrRead, unit: 'x' },
    { name: 'PCR_Event, password', value: eventPlain * 1000, unit: 'ms' },
    { name: 'PCR_Event, session salted to the RSA EK (EK create/flush incl.)', value: eventSalted * 1000, unit: 'ms' },
    { name: 'ratio salted / password PCR_Event', value: eventSalted / eventPlain, unit: 'x' },
    { name: 'ActivateCredential, salted + encrypted (EK+AK create/flush incl.)', value: activation * 1000, unit: 'ms' },
  ]);
} finally {
  await rm(dir, { recursive: true, force: true });
  await swtpm.stop();
}
