import test from 'ava';
import { hash, type HashAlg } from '../../lib/bytes.js';
import { run } from '../../lib/exec.js';
import { extend, type PcrBanks } from '../../measurements/pcr/extend.js';
import { Tpm } from '../../tpm/client/tpm.js';
import { sextant } from '../helpers/cli.js';
import { useSwtpm } from '../helpers/swtpm.js';

const swtpm = useSwtpm(test);

/** tpm2_pcrread's output (`  sha256:\n    0 : 0x...`) as PcrBanks: the independent oracle. */
async function tpm2Pcrread(env: Record<string, string>): Promise<PcrBanks> {
  const { stdout } = await run('tpm2_pcrread', [], { env });
  const banks: Record<string, Record<string, string>> = {};
  let bank: string | undefined;
  for (const line of stdout.split('\n')) {
    const b = /^\s*(sha\d+):\s*$/.exec(line);
    const v = /^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*$/.exec(line);
    if (b) bank = b[1];
    else if (v && bank) (banks[bank] ??= {})[v[1]] = v[2].toLowerCase();
  }
  return banks;
}

const fromHex = (s: string) => Buffer.from(s, 'hex');

test.serial('extend and PCR_Event give what the TS extend math predicts, in every bank', async (t) => {
  const tpm = await Tpm.open({ tcti: swtpm().tcti });
  try {
    const before = await tpm.pcrRead({ sha1: [10, 15], sha256: [10, 15] });
    const d1 = hash('sha1', Buffer.from('one'));
    const d256 = hash('sha256', Buffer.from('one'));
    await tpm.pcrExtend(10, { sha1: d1, sha256: d256 });

    const clusterId = Buffer.from('cluster-7f3a');
    const eventDigests = await tpm.pcrEvent(15, clusterId);
    for (const alg of ['sha1', 'sha256'] as HashAlg[]) {
      t.deepEqual(Buffer.from(eventDigests[alg]!), hash(alg, clusterId), `PCR_Event digest ${alg}`);
    }

    const after = await tpm.pcrRead({ sha1: [10, 15], sha256: [10, 15] });
    t.is(after.sha1!['10'], extend('sha1', fromHex(before.sha1!['10']), d1).toString('hex'));
    t.is(after.sha256!['10'], extend('sha256', fromHex(before.sha256!['10']), d256).toString('hex'));
    // PCR 15 is the cluster-ID lock: H(0^32 || H(clusterID)) on a fresh TPM.
    t.is(after.sha256!['15'], extend('sha256', Buffer.alloc(32), hash('sha256', clusterId)).toString('hex'));
    t.is(after.sha1!['15'], extend('sha1', fromHex(before.sha1!['15']), hash('sha1', clusterId)).toString('hex'));
  } finally {
    await tpm.close();
  }
});

test.serial('`sextant tpm pcrs --json` equals tpm2_pcrread for all 24 PCRs of both banks', async (t) => {
  // Make the values distinct so a shifted or misattributed digest cannot pass.
  const tpm = await Tpm.open({ tcti: swtpm().tcti });
  try {
    for (const pcr of [0, 7, 8, 9, 16, 23]) await tpm.pcrEvent(pcr, Buffer.from(`pcr ${pcr}`));
  } finally {
    await tpm.close();
  }
  const r = await sextant(['tpm', 'pcrs', '--tcti', swtpm().tcti, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const ours = JSON.parse(r.stdout) as { banks: PcrBanks };
  const theirs = await tpm2Pcrread(swtpm().env);
  t.deepEqual(Object.keys(ours.banks), ['sha1', 'sha256']);
  t.is(Object.keys(ours.banks.sha256!).length, 24);
  t.deepEqual(ours.banks, theirs);
  t.not(ours.banks.sha256!['23'], '0'.repeat(64));
});

test.serial('PCR_Read over more than 8 PCRs loops until every value is in', async (t) => {
  const tpm = await Tpm.open({ tcti: swtpm().tcti });
  try {
    const all = Array.from({ length: 24 }, (_, i) => i);
    const v = await tpm.pcrRead({ sha256: all, sha1: all });
    t.is(Object.keys(v.sha256!).length, 24);
    t.is(Object.keys(v.sha1!).length, 24);
    t.deepEqual(v, await tpm2Pcrread(swtpm().env));
    await t.throwsAsync(tpm.pcrRead({ sha384: [0] }), { code: 'INVALID_ARGUMENT' });
    await t.throwsAsync(tpm.pcrExtend(24, { sha256: Buffer.alloc(32) }), { code: 'INVALID_ARGUMENT' });
  } finally {
    await tpm.close();
  }
});
