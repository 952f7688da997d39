import test from 'ava';
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT } from '../../helpers/paths.js';
import { sdNotify } from '../../../agent/systemd/notify.js';
import type { Runner } from '../../../agent/disk/runner.js';

const UNIT = path.join(REPO_ROOT, 'agent/systemd/sextant-agent.service');

test('systemd-analyze verify accepts the unit (only the not-yet-installed binary is missing)', async (t) => {
  const r = await execa('systemd-analyze', ['verify', UNIT], { reject: false });
  const version = Number(/systemd (\d+)/.exec((await execa('systemctl', ['--version'])).stdout)?.[1]);
  const lines = r.stderr.split('\n').filter(Boolean);
  // ImportCredential= exists since systemd 254: the image has 257, a Debian 12 host 252.
  const tolerated = (l: string) => /\/usr\/bin\/sextant is not executable/.test(l) || (version < 254 && /Unknown key 'ImportCredential'/.test(l));
  t.deepEqual(lines.filter((l) => !tolerated(l)), [], r.stderr);
});

test('the configuration may come as a credential, and progress reaches the console', async (t) => {
  const lines = (await readFile(UNIT, 'utf8')).split('\n');
  for (const line of ['ImportCredential=sextant.*', 'StandardOutput=journal+console']) t.true(lines.includes(line), line);
  t.false(lines.some((l) => l.startsWith('ConditionPathExists=')), 'a missing file must not skip the unit: the credential may hold the config');
});

test('the unit is Type=notify, ordered before kubelet, and does not restart on bad config (exit 2)', async (t) => {
  const text = await readFile(UNIT, 'utf8');
  for (const line of ['Type=notify', 'Before=kubelet.service', 'RestartPreventExitStatus=2', 'ExecStart=/usr/bin/sextant agent run --config /etc/sextant/agent.json']) {
    t.true(text.split('\n').includes(line), line);
  }
});

test('sd_notify: systemd-notify --ready --status=... inside a unit, nothing outside', async (t) => {
  const calls: string[][] = [];
  const runner: Runner = async (cmd, args) => {
    calls.push([cmd, ...args]);
    return { exitCode: 0, stdout: '', stdoutBytes: Buffer.alloc(0), stderr: '' };
  };
  t.false(await sdNotify({ ready: true, status: 'joined' }, runner, {}));
  t.true(await sdNotify({ ready: true, status: 'joined\ncluster' }, runner, { NOTIFY_SOCKET: '/run/systemd/notify' }));
  t.deepEqual(calls, [['systemd-notify', '--ready', '--status=joined cluster']]);
  const failing: Runner = async () => {
    throw new Error('no socket');
  };
  t.false(await sdNotify({ status: 'x' }, failing, { NOTIFY_SOCKET: '/nope' }));
});
