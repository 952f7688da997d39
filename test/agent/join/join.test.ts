import test from 'ava';
import { readFile, writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../../lib/exec.js';
import { FIXTURES } from '../../helpers/paths.js';
import { joinConfiguration, writeJoinConfiguration } from '../../../agent/join/join-configuration.js';
import { kubeadmJoin } from '../../../agent/join/kubeadm-join.js';
import type { Runner } from '../../../agent/disk/runner.js';
import { tempDir } from '../disk/images.js';

const KUBEADM = path.join(FIXTURES, 'kubeadm-standin/kubeadm');
const TICKET = {
  apiServerEndpoint: '10.0.0.1:6443',
  token: 'abcdef.0123456789abcdef',
  tokenExpiresAt: '2026-11-27T00:00:00Z',
  caCertHash: 'sha256:' + '0f'.repeat(32),
  caCert: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n',
};
const NODE = { name: 'node-1', criSocket: 'unix:///run/containerd/containerd.sock', kubeletExtraArgs: { 'node-labels': 'sextant=1', 'cgroup-driver': 'systemd' }, role: 'worker' as const };

async function records(file: string): Promise<{ args: string[]; problems: string[]; config?: any }[]> {
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

function standinRunner(record: string, failJoins = 0): Runner {
  return (cmd, args, opts) => run(cmd, args, { ...opts, env: { KUBEADM_STANDIN_RECORD: record, KUBEADM_STANDIN_FAIL_JOINS: String(failJoins) } });
}

test('the written JoinConfiguration passes the strict v1beta4 stand-in; kubeadm is called as join --config FILE', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const cfgPath = path.join(dir, 'run/kubeadm-join.yaml');
  const record = path.join(dir, 'calls.jsonl');
  await writeJoinConfiguration(cfgPath, joinConfiguration(TICKET, NODE));
  const r = await kubeadmJoin({ kubeadm: KUBEADM, configPath: cfgPath, attempts: 1, retryDelayMs: 0, runner: standinRunner(record) });
  t.is(r.attempts, 1);
  const [call] = await records(record);
  t.deepEqual(call.args, ['join', '--config', cfgPath]);
  t.deepEqual(call.problems, []);
  t.deepEqual(call.config.nodeRegistration.kubeletExtraArgs, [{ name: 'cgroup-driver', value: 'systemd' }, { name: 'node-labels', value: 'sextant=1' }]);
  t.deepEqual(call.config.discovery.bootstrapToken.caCertHashes, [TICKET.caCertHash]);
});

test('control-plane nodes get a controlPlane section', async (t) => {
  const cfg = joinConfiguration(TICKET, { ...NODE, role: 'control-plane', advertiseAddress: '10.0.0.5' });
  t.deepEqual(cfg.controlPlane, { localAPIEndpoint: { advertiseAddress: '10.0.0.5', bindPort: 6443 } });
  t.is(joinConfiguration(TICKET, NODE).controlPlane, undefined);
});

test('the stand-in is strict: v1beta3-style map args, unknown fields, world-readable file are refused', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const record = path.join(dir, 'calls.jsonl');
  const bad = [
    { ...joinConfiguration(TICKET, NODE), apiVersion: 'kubeadm.k8s.io/v1beta3' },
    { ...joinConfiguration(TICKET, NODE), nodeRegistration: { name: 'node-1', criSocket: 'unix:///x', kubeletExtraArgs: { a: 'b' } } },
    { ...joinConfiguration(TICKET, NODE), surprise: true },
  ];
  for (const [i, cfg] of bad.entries()) {
    const f = path.join(dir, `bad${i}.yaml`);
    await writeJoinConfiguration(f, cfg as never);
    await t.throwsAsync(run(KUBEADM, ['join', '--config', f], { env: { KUBEADM_STANDIN_RECORD: record } }), { code: 'EXEC_FAILED' });
  }
  const open = path.join(dir, 'open.yaml');
  await writeFile(open, JSON.stringify(joinConfiguration(TICKET, NODE)));
  await chmod(open, 0o644);
  await t.throwsAsync(run(KUBEADM, ['join', '--config', open], { env: { KUBEADM_STANDIN_RECORD: record } }));
  t.true((await records(record)).every((r) => r.problems.length > 0));
});

test('join retries a bounded number of times, resetting between attempts, then JOIN_FAILED', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const cfgPath = path.join(dir, 'join.yaml');
  await writeJoinConfiguration(cfgPath, joinConfiguration(TICKET, NODE));
  const okRecord = path.join(dir, 'ok.jsonl');
  const delays: number[] = [];
  const sleep = async (ms: number) => void delays.push(ms);
  const r = await kubeadmJoin({ kubeadm: KUBEADM, configPath: cfgPath, attempts: 3, retryDelayMs: 7, runner: standinRunner(okRecord, 2), sleep });
  t.is(r.attempts, 3);
  t.deepEqual((await records(okRecord)).map((c) => c.args[0]), ['join', 'reset', 'join', 'reset', 'join']);
  t.deepEqual(delays, [7, 7]);
  const failRecord = path.join(dir, 'fail.jsonl');
  await t.throwsAsync(kubeadmJoin({ kubeadm: KUBEADM, configPath: cfgPath, attempts: 2, retryDelayMs: 0, runner: standinRunner(failRecord, 5), sleep }), { code: 'JOIN_FAILED' });
  t.is((await records(failRecord)).filter((c) => c.args[0] === 'join').length, 2);
});

test('a malformed ticket never reaches kubeadm', (t) => {
  t.throws(() => joinConfiguration({ ...TICKET, token: 'not-a-token' }, NODE), { code: 'PROTOCOL_INVALID' });
  t.throws(() => joinConfiguration({ ...TICKET, caCertHash: 'md5:00' }, NODE), { code: 'PROTOCOL_INVALID' });
});
