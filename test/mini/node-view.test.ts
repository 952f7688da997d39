/** What a node shows, from its console and the audit records naming its disk (mini/node-view.ts). */
import test from 'ava';
import { nodeView, type NodeObservation } from '../../mini/node-view.js';
import type { ConsoleLine } from '../../mini/serial.js';

const l = (t: number, text: string): ConsoleLine => ({ t, text });
const rec = (t: number, r: Record<string, unknown>) => l(t, `[  99.1] sextant[487]: ${JSON.stringify({ agent: 'sextant', ...r })}`);
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const measurements = { '4': { expected: A, enforced: true }, '9': { expected: A, enforced: true }, '11': { expected: A, enforced: true }, '7': { expected: B, enforced: false } };
const base = (lines: ConsoleLine[], o: Partial<NodeObservation> = {}): NodeObservation => ({
  name: 'node-1', image: '/img', lines, audit: [], measurements, qemuRunning: true, pids: { qemu: 10, swtpm: 9 }, elapsedSeconds: 100, ...o,
});
const boot = [
  l(1, 'BdsDxe: loading Boot0001 "UEFI Misc Device"'),
  l(40, '[    0.000000] Linux version 6.12.57'),
  l(80, '         Starting initrd-switch-root.service - Switch Root...'),
  l(120, '         Starting sextant-agent.service - sextant boot agent...'),
];

test('phases follow the console; a release counts only the enforced PCRs whose expected value was quoted', (t) => {
  t.is(nodeView(base(boot.slice(0, 2))).phase, 'kernel');
  const lines = [...boot, rec(125, { step: 'attest', outcome: 'done' }), rec(130, { step: 'disk', outcome: 'done', state: 'formatted' }),
    rec(131, { step: 'join', outcome: 'done', ran: ['kubeadm-join'] }), rec(132, { step: 'done', outcome: 'done' })];
  const audit = [{ seq: 3, time: '', decision: 'release', diskUuid: 'u', measurements: 'img 1', pcrs: { '4': A, '9': B, '11': A, '7': B } }];
  const v = nodeView(base(lines, { audit }));
  t.is(v.state, 'done');
  t.is(v.phase, 'agent');
  t.true(v.attested);
  t.deepEqual(v.attestedPcrs, [4, 11], 'PCR 9 was quoted with another value; PCR 7 is not enforced');
  t.is(v.disk, 'formatted');
  t.is(v.joinedBy, 'kubeadm join');
  t.deepEqual(v.milestones, { firmware: 1, kernel: 40, system: 80, agent: 120, attested: 125, disk: 130, joined: 131, done: 132 });
  t.is(v.failure, undefined);
});

test('a crash-looping agent fails with the key service\'s refusal and the console tail', (t) => {
  const failed = (n: number) => l(150 + n, `audit: type=1130 msg='unit=sextant-agent comm="systemd" res=failed'`);
  const lines = [...boot, rec(140, { step: 'attest', outcome: 'failed', code: 'MEASUREMENTS_MISMATCH' }), failed(1), failed(2), failed(3)];
  const audit = [{ seq: 4, time: '', decision: 'refuse', stage: 'applyPolicy', code: 'MEASUREMENTS_MISMATCH', reason: 'enforced PCR 11 differ: PCR 11 .cmdline' }];
  const v = nodeView(base(lines, { audit }));
  t.is(v.state, 'failed');
  t.is(v.failure?.code, 'MEASUREMENTS_MISMATCH');
  t.regex(v.failure!.reason, /keeps failing: key service refused \(applyPolicy\): .*PCR 11 \.cmdline/);
  t.true(v.failure!.consoleTail.at(-1)!.includes('res=failed'));
  t.is(v.agentStep, 'attest failed (MEASUREMENTS_MISMATCH)');
});

test('qemu gone before the agent finished is a failure, unless the node was stopped on purpose; a timeout is one too', (t) => {
  t.is(nodeView(base(boot, { qemuRunning: false })).state, 'failed');
  t.regex(nodeView(base(boot, { qemuRunning: false })).failure!.reason, /^qemu exited before the agent finished: no agent record/);
  const stopped = nodeView(base(boot, { qemuRunning: false, stoppedOnPurpose: true }));
  t.is(stopped.state, 'stopped');
  t.is(stopped.failure, undefined);
  t.regex(nodeView(base(boot, { timedOut: true })).failure!.reason, /^no result after 100 s/);
  t.is(nodeView(base([], { qemuRunning: true })).phase, 'starting');
});

test('a guest that froze (systemd could not start, kernel panic) fails at once, not at the timeout', (t) => {
  const lines = [...boot.slice(0, 3), l(365, '[  364.783646] systemd[1]: Failed to fork off sandboxing environment for executing generators: Protocol error'),
    l(365, '[!!!!!!] Failed to start up manager.'), l(365, '[  364.982579] systemd[1]: Freezing execution.')];
  const v = nodeView(base(lines));
  t.is(v.state, 'failed');
  t.regex(v.failure!.reason, /^the guest stopped: \[!!!!!!\] Failed to start up manager\.: no agent record/);
  t.true(v.failure!.bootFroze, 'no agent record yet: mini up may boot it again');
  const afterAgent = nodeView(base([...boot, rec(125, { step: 'attest', outcome: 'done' }), l(130, '[  130.1] Kernel panic - not syncing: Attempted to kill init!')]));
  t.is(afterAgent.state, 'failed');
  t.is(afterAgent.failure!.bootFroze, undefined, 'the agent had run: not a boot freeze');
  t.is(nodeView(base(boot, { qemuRunning: false })).failure!.bootFroze, undefined, 'qemu exiting is not a freeze');
  t.is(nodeView(base([...boot.slice(0, 2), l(50, '[   49.1] Kernel panic - not syncing: VFS: Unable to mount root fs')])).state, 'failed');
});
