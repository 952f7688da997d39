import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { Tpm } from '../../tpm/client/tpm.js';
import { quotePcrs } from '../../tpm/client/attest.js';
import { objectName } from '../../tpm/name.js';
import { verifyQuote } from '../../tpm/quote/verify.js';
import { sextant } from '../helpers/cli.js';
import { useSwtpm } from '../helpers/swtpm.js';

const swtpm = useSwtpm(test);

const pcrs0to15 = Array.from({ length: 16 }, (_, i) => i);

test.serial('a quote made through the engine verifies in pure TS: signature, nonce, PCR digest', async (t) => {
  const tpm = await Tpm.open({ tcti: swtpm().tcti });
  try {
    await tpm.pcrEvent(11, Buffer.from('a measured component'));
    const nonce = await tpm.getRandom(32);
    const q = await quotePcrs(tpm, { qualifyingData: nonce, pcrs: { sha256: pcrs0to15 } });
    t.deepEqual(Buffer.from(q.akName), Buffer.from(objectName(q.akPublic)), 'the Name the TPM reported == codec Name');
    const v = verifyQuote({ attest: q.attest, signature: q.signature, akPublic: q.akPublic }, { extraData: nonce, pcrs: q.pcrs });
    t.deepEqual(v.selection, { sha256: pcrs0to15 });
    t.is(v.signatureHash, 'sha256');

    t.throws(() => verifyQuote({ ...q }, { extraData: Buffer.alloc(32), pcrs: q.pcrs }), { code: 'QUOTE_NONCE_MISMATCH' });
    const tampered = { ...q.pcrs, sha256: { ...q.pcrs.sha256, '11': '00'.repeat(32) } };
    t.throws(() => verifyQuote({ ...q }, { extraData: nonce, pcrs: tampered }), { code: 'PCR_DIGEST_MISMATCH' });
    t.deepEqual(await tpm.transientHandles(), [], 'the AK was flushed');
  } finally {
    await tpm.close();
  }
});

test.serial('`sextant tpm quote --json` verifies with tpm2_checkquote, and a wrong nonce does not', async (t) => {
  const nonce = 'c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc';
  const r = await sextant(['tpm', 'quote', '--tcti', swtpm().tcti, '--nonce', nonce, '--pcrs', '0-15', '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const q = JSON.parse(r.stdout) as { attest: string; signature: string; akPublicPem: string; pcrs: Record<string, Record<string, string>> };
  t.deepEqual(Object.keys(q.pcrs.sha256).map(Number), pcrs0to15);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-quote-'));
  try {
    await writeFile(path.join(dir, 'ak.pem'), q.akPublicPem);
    await writeFile(path.join(dir, 'attest.bin'), Buffer.from(q.attest, 'hex'));
    await writeFile(path.join(dir, 'sig.bin'), Buffer.from(q.signature, 'hex'));
    const args = (n: string) => ['-u', 'ak.pem', '-m', 'attest.bin', '-s', 'sig.bin', '-q', n, '-g', 'sha256'];
    const ok = await run('tpm2_checkquote', args(nonce), { cwd: dir, okExitCodes: [1] });
    t.is(ok.exitCode, 0, ok.stderr);
    const bad = await run('tpm2_checkquote', args('00' + nonce.slice(2)), { cwd: dir, okExitCodes: [1] });
    t.is(bad.exitCode, 1, 'tpm2_checkquote rejects another nonce');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.serial('the AK is the same key on every call (a primary derived from the owner seed)', async (t) => {
  const a = await sextant(['tpm', 'quote', '--nonce', '01', '--json'], { env: swtpm().env });
  const b = await sextant(['tpm', 'quote', '--nonce', '02', '--pcrs', '0,7', '--json'], { env: swtpm().env });
  t.is(a.exitCode, 0, a.stderr);
  t.is(b.exitCode, 0, b.stderr);
  t.is(JSON.parse(a.stdout).akPublicPem, JSON.parse(b.stdout).akPublicPem);
  t.deepEqual(Object.keys(JSON.parse(b.stdout).pcrs.sha256), ['0', '7']);
});

test.serial('bad quote arguments are usage errors', async (t) => {
  for (const args of [['--nonce', 'xyz'], ['--nonce', 'aa'.repeat(65)], [], ['--nonce', '00', '--pcrs', '0-24'], ['--nonce', '00', '--bank', 'md5']]) {
    const r = await sextant(['tpm', 'quote', '--tcti', swtpm().tcti, ...args]);
    t.is(r.exitCode, 2, args.join(' '));
    t.regex(r.stderr, /^sextant: USAGE: /);
  }
});
