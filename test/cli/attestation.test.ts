import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sextant } from '../helpers/cli.js';
import { snpEvidence } from '../helpers/snp-evidence.js';

// `sextant attestation snp verify` as a user runs it, on real evidence from Debian's packages.

let dir: string;
const file = async (name: string, bytes: Buffer | string): Promise<string> => {
  const p = path.join(dir, name);
  await writeFile(p, bytes);
  return p;
};

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sextant-snp-cli-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function goSevFiles(): Promise<{ report: string; vcek: string; chain: string; raw: Buffer }> {
  const e = (await snpEvidence()).goSev;
  return { report: await file('attestation.bin', e.report), vcek: await file('vcek.der', e.vcek), chain: await file('milan.pem', e.chain), raw: e.report };
}

test('verifies the real go-sev-guest report: exit 0, decoded report and verdict, policy finding printed', async (t) => {
  const f = await goSevFiles();
  const r = await sextant(['attestation', 'snp', 'verify', f.report, '--vcek', f.vcek, '--chain', f.chain]);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /^reported TCB +bl=2 tee=0 snp=5 ucode=68 /m);
  t.regex(r.stdout, /^report_data +0102030405/m);
  t.regex(r.stdout, /^chip id +3ac3fe21e13fb099/m);
  t.regex(r.stdout, /^chain +SEV-Milan <- ARK-Milan \(pinned sha256 69d063b4/m);
  t.regex(r.stdout, /^policy +SNP_POLICY_REFUSED: guest policy allows debugging .*\(not enforced\)$/m);
  t.regex(r.stdout, /^verdict +VERIFIED/m);
  const j = await sextant(['attestation', 'snp', 'verify', f.report, '--vcek', f.vcek, '--chain', f.chain, '--json']);
  const out = JSON.parse(j.stdout);
  t.like(out, { ok: true, evidence: 'snp', report: { version: 2, signingKey: 'vcek', policy: { debug: true } }, attested: { chain: { product: 'Milan' }, signer: { kind: 'vcek' } } });
  const strict = await sextant(['attestation', 'snp', 'verify', f.report, '--vcek', f.vcek, '--chain', f.chain, '--enforce-policy', '--json']);
  t.is(strict.exitCode, 1);
  t.like(JSON.parse(strict.stdout), { ok: false, code: 'SNP_POLICY_REFUSED' });
});

test('the virtee report as hex text, DER VCEK and PEM chain verifies; --runtime-data and --at are enforced', async (t) => {
  const v = (await snpEvidence()).virtee;
  const report = await file('report.hex', v.report.toString('hex'));
  const vcek = await file('virtee-vcek.der', v.vcek);
  const chain = await file('virtee-chain.pem', v.chain);
  const ok = await sextant(['attestation', 'snp', 'verify', report, '--vcek', vcek, '--chain', chain, '--enforce-policy']);
  t.is(ok.exitCode, 0, ok.stdout + ok.stderr);
  const rd = await sextant(['attestation', 'snp', 'verify', report, '--vcek', vcek, '--chain', chain, '--runtime-data', await file('rt.json', '{}'), '--json']);
  t.is(rd.exitCode, 1);
  t.like(JSON.parse(rd.stdout), { ok: false, code: 'SNP_REPORT_DATA_MISMATCH', report: { version: 2 } });
  const late = await sextant(['attestation', 'snp', 'verify', report, '--vcek', vcek, '--chain', chain, '--at', '2031-01-01T00:00:00Z', '--json']);
  t.is(late.exitCode, 1);
  t.like(JSON.parse(late.stdout), { code: 'SNP_CERT_EXPIRED' });
});

test('a changed byte, a missing chain or bad input gives its stable code and exit status', async (t) => {
  const f = await goSevFiles();
  const changed = Buffer.from(f.raw);
  changed[0x90] ^= 1; // measurement
  const bad = await sextant(['attestation', 'snp', 'verify', await file('changed.bin', changed), '--vcek', f.vcek, '--chain', f.chain]);
  t.is(bad.exitCode, 1);
  t.regex(bad.stdout, /^verdict +REFUSED SNP_SIGNATURE_INVALID: /m);
  const noChain = await sextant(['attestation', 'snp', 'verify', f.report, '--vcek', f.vcek, '--json']);
  t.is(noChain.exitCode, 1);
  t.like(JSON.parse(noChain.stdout), { code: 'SNP_CHAIN_MISSING' });
  const short = await sextant(['attestation', 'snp', 'verify', await file('short.bin', f.raw.subarray(0, 1000)), '--vcek', f.vcek]);
  t.is(short.exitCode, 2);
  t.regex(short.stderr, /^sextant: SNP_REPORT_MALFORMED: /);
  const noVcek = await sextant(['attestation', 'snp', 'verify', f.report]);
  t.is(noVcek.exitCode, 2);
  t.regex(noVcek.stderr, /^sextant: USAGE: --vcek is required/);
  const badAt = await sextant(['attestation', 'snp', 'verify', f.report, '--vcek', f.vcek, '--at', 'yesterday']);
  t.is(badAt.exitCode, 2);
  const help = await sextant(['attestation', 'snp', 'verify', '--help']);
  t.is(help.exitCode, 0);
  t.regex(help.stdout, /--runtime-data FILE/);
});
