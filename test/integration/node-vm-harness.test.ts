/**
 * The parts of the end-to-end harness (mini/, through test/helpers/node-vm.ts) that need no boot: the state
 * disk as the agent must find it, the qemu command line's network and credential, the guest
 * relay, and the console timeline. The boots themselves run in test/e2e/node-boot.test.ts.
 */
import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { bootTimeline } from '../helpers/boot-phases.js';
import { bootSettled, createStateDisk, GUEST_KEYSERVICE_URL, qemuArgs, type ConsoleLine, type NodeMachine } from '../helpers/node-vm.js';
import { REPO_ROOT } from '../helpers/paths.js';

test('the state disk is a GPT with one partition labelled sextant-state whose contents blkid finds blank', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'node-vm-'));
  try {
    const disk = path.join(dir, 'state.img');
    await createStateDisk(disk, 64);
    const table = JSON.parse((await run('sfdisk', ['--json', disk])).stdout) as { partitiontable: { label: string; partitions: { start: number; size: number; name: string; uuid: string }[] } };
    t.is(table.partitiontable.label, 'gpt');
    t.is(table.partitiontable.partitions.length, 1);
    const p = table.partitiontable.partitions[0];
    t.is(p.name, 'sextant-state');
    t.is((p.size * 512) % 4096, 0, 'a whole number of 4096-byte LUKS2 sectors (cryptsetup refuses anything else)');
    // blkid on the partition's bytes: no signature at all (exit 2), as the agent's "blank" check expects.
    const probe = await run('blkid', ['-p', '-O', String(p.start * 512), '--size', String(p.size * 512), disk], { okExitCodes: [0, 2] });
    t.is(probe.exitCode, 2, probe.stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('qemu gets user-mode networking restricted to the relayed key service, and the agent config as an SMBIOS credential', (t) => {
  const machine: NodeMachine = { dir: '/m', tpm: { dir: '/m/tpm', stateDir: '/m/tpm/state', caCertPath: '', issuerCertPath: '' }, vars: '/m/vars.fd', bootDisk: '/m/boot.qcow2', stateDisk: '/m/state.img' };
  const config = { keyservice: { url: GUEST_KEYSERVICE_URL, fingerprint: 'sha256:' + 'ab'.repeat(32) } };
  const args = qemuArgs({ machine, bootDisk: machine.bootDisk, swtpmSocket: '/m/sock', qmpSocket: '/m/qmp', serialLog: '/m/serial.log', keyServicePort: 4321, agentConfig: config, memoryMiB: 2048, cpus: 2 });
  const nics = args.flatMap((a, i) => (args[i - 1] === '-nic' ? [a] : []));
  t.is(nics.length, 1);
  t.regex(nics[0], /^user,model=virtio-net-pci,restrict=on,guestfwd=tcp:10\.0\.2\.100:8443-cmd:\S+ --no-warnings \S+tcp-relay\.js 127\.0\.0\.1 4321$/);
  t.false(args.some((a) => /hostfwd|-netdev|tap/.test(a)));
  const smbios = args[args.indexOf('-smbios') + 1];
  const m = /^type=11,value=io\.systemd\.credential\.binary:sextant\.agent\.json=([A-Za-z0-9+/=]+)$/.exec(smbios);
  t.truthy(m, smbios);
  t.deepEqual(JSON.parse(Buffer.from(m![1], 'base64').toString()), config);
  t.true(args.includes('tpm-crb,tpmdev=tpm0'));
  t.true(args.some((a) => a.includes('format=qcow2,file=/m/boot.qcow2')));
});

test('the guest relay carries one connection both ways, and closes at once when nothing listens', async (t) => {
  const server = createServer((s) => s.on('data', (b) => s.end(Buffer.concat([Buffer.from('echo:'), b]))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const relay = path.join(REPO_ROOT, 'dist/mini/tcp-relay.js');
  try {
    const r = await execa(process.execPath, [relay, '127.0.0.1', String(port)], { input: 'hello', timeout: 20_000 });
    t.is(r.stdout, 'echo:hello');
    t.is(r.stderr, '');
  } finally {
    await new Promise((r) => server.close(r));
  }
  const down = await execa(process.execPath, [relay, '127.0.0.1', String(port)], { input: 'x', timeout: 20_000, reject: false });
  t.is(down.exitCode, 0);
  t.is(down.stdout + down.stderr, '');
});

test('the timeline: firmware hand-off, kernel start from printk stamps, switch-root, agent, multi-user and agent steps', (t) => {
  const l = (tt: number, text: string): ConsoleLine => ({ t: tt, text });
  const lines = [
    l(20.5, 'BdsDxe: starting Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x3,0x0)'),
    l(60.0, '[    0.000000] Linux version 6.12.0'),
    l(60.0, '[    9.500000] Run /init as init process'),
    l(75.0, '[   15.000000] later line'),
    l(90.0, '         Starting initrd-switch-root.service - Switch Root...'),
    l(120.0, '         Starting sextant-agent.service - sextant boot agent (attestation, state disk, cluster join)...'),
    l(121.0, 'sextant[512]: {"step":"config","outcome":"done","ms":40}'),
    l(150.0, 'sextant[512]: {"step":"done","outcome":"done","ms":1}'),
    l(151.0, '[  OK  ] Reached target multi-user.target - Multi-User System.'),
  ];
  const tl = bootTimeline(lines);
  const at = Object.fromEntries(tl.marks.map((m) => [m.name, m.t]));
  t.is(at['firmware starts the UKI'], 20.5);
  t.is(at['kernel start'], 50.5); // 60.0 - 9.5: the burst arrived 9.5 s after the kernel started
  t.is(at['initrd switches root'], 90);
  t.is(at['sextant-agent starting'], 120);
  t.is(at['multi-user target'], 151);
  t.deepEqual(tl.agentSteps.map((s) => s.record.step), ['config', 'done']);
  t.deepEqual(tl.phases.map((p) => p.seconds), [20.5, 30, 39.5, 30, 30, 1]);
});

test('a boot is settled at multi-user, or when the agent unit keeps failing (restarts print no status line, only audit records)', (t) => {
  const failedStart = (n: number): ConsoleLine => ({ t: n, text: `[  544.25] audit: type=1130 audit(1795739613.440:125): pid=1 uid=0 msg='unit=sextant-agent comm="systemd" exe="/usr/lib/systemd/systemd" hostname=? addr=? terminal=? res=failed'` });
  t.false(bootSettled([failedStart(1), failedStart(2)]));
  t.true(bootSettled([failedStart(1), failedStart(2), failedStart(3)]));
  t.true(bootSettled([{ t: 1, text: '[  OK  ] Reached target multi-user.target - Multi-User System.' }]));
  t.false(bootSettled([{ t: 1, text: "audit: msg='unit=sextant-agent comm=\"systemd\" res=success'" }]));
});
