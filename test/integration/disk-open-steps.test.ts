import test from 'ava';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { run, type ExecResult } from '../../lib/exec.js';
import { SextantError } from '../../lib/errors.js';
import { prepareStateDisk } from '../../agent/disk/prepare.js';
import type { Runner } from '../../agent/disk/runner.js';
import { luksJson, sparseImage, tempDir } from '../agent/disk/images.js';

// These hosts have no device-mapper, so the open/mkfs/mount steps get a stand-in for the
// kernel side only: `cryptsetup status|open`, blkid/mkfs on /dev/mapper/*, findmnt and mount
// are answered from an in-memory model of the mapping. Every header operation (format,
// token, key test, dump) still runs the real cryptsetup on the image file. The same code
// runs against real dm-crypt in the QEMU end-to-end suite.

interface DmModel {
  active: boolean;
  ext4: boolean;
  mounted: boolean;
  mkfsCount: number;
}

function ok(stdout = '', exitCode = 0): ExecResult {
  return { exitCode, stdout, stdoutBytes: Buffer.from(stdout), stderr: '' };
}

function dmStandIn(dm: DmModel, device: string, crashAfter = Infinity): Runner {
  let calls = 0;
  const step = <T>(r: T): T => {
    if (++calls === crashAfter) throw new Error(`injected crash after call ${calls}`);
    return r;
  };
  return async (cmd, args, opts) => {
    const a = args.join(' ');
    if (cmd === 'cryptsetup' && args[0] === 'status') return step(dm.active ? ok(`  type: LUKS2\n  device:  ${device}\n`) : ok('', 4));
    if (cmd === 'cryptsetup' && args[0] === 'open' && !args.includes('--test-passphrase')) {
      const test = await run('cryptsetup', ['open', '--test-passphrase', '--key-file', '-', device], { input: opts?.input, okExitCodes: [2] });
      if (test.exitCode !== 0) throw new SextantError({ code: 'EXEC_FAILED', message: 'No key available' });
      dm.active = true;
      return step(ok());
    }
    if (cmd === 'blkid' && a.includes('/dev/mapper/')) return step(dm.ext4 ? ok('TYPE=ext4\nUSAGE=filesystem\n') : ok('', 2));
    if (cmd === 'mkfs.ext4') {
      if (!dm.active) throw new Error('mkfs on an inactive mapping');
      dm.ext4 = true;
      dm.mkfsCount++;
      return step(ok());
    }
    if (cmd === 'findmnt') return step(dm.mounted ? ok('/dev/mapper/sextant-state\n') : ok('', 1));
    if (cmd === 'mount') {
      dm.mounted = true;
      return step(ok());
    }
    return step(await run(cmd, args, opts));
  };
}

const KEY = randomBytes(64);

test('full path with open: a crash after every step converges; mkfs runs exactly once over all restarts', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const probe: DmModel = { active: false, ext4: false, mounted: false, mkfsCount: 0 };
  const countImg = await sparseImage(path.join(dir, 'count.img'));
  let total = 0;
  const counting: Runner = async (cmd, args, opts) => {
    total++;
    return dmStandIn(probe, countImg)(cmd, args, opts);
  };
  const first = await prepareStateDisk({ device: countImg, key: KEY, open: true, runner: counting, mountpoint: path.join(dir, 'mnt-count') });
  t.deepEqual(first.steps, ['formatted', 'token-written', 'key-verified', 'opened', 'mkfs', 'filesystem-recorded', 'mounted']);

  for (let n = 1; n <= total; n++) {
    const img = await sparseImage(path.join(dir, `c${n}.img`));
    // A reboot loses the mapping and the mount, keeps what is on the disk.
    const dm: DmModel = { active: false, ext4: false, mounted: false, mkfsCount: 0 };
    const mountpoint = path.join(dir, `mnt-${n}`);
    await t.throwsAsync(prepareStateDisk({ device: img, key: KEY, open: true, runner: dmStandIn(dm, img, n), mountpoint }));
    dm.active = false;
    dm.mounted = false;
    const r = await prepareStateDisk({ device: img, key: KEY, open: true, runner: dmStandIn(dm, img), mountpoint });
    t.log(`crash after call ${n}/${total} -> ${r.found}: ${r.steps.join(', ')}`);
    t.true(r.steps.includes('mounted'));
    t.is(dm.mkfsCount, 1, `crash ${n}: mkfs ran ${dm.mkfsCount} times`);
    t.like((await luksJson(img)).tokens, { '0': { type: 'sextant', filesystem: 'ext4' } });
  }
});

test('token says ext4 but the volume shows no filesystem: refuse, never mkfs', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const img = await sparseImage(path.join(dir, 'd.img'));
  const dm: DmModel = { active: false, ext4: false, mounted: false, mkfsCount: 0 };
  await prepareStateDisk({ device: img, key: KEY, open: true, runner: dmStandIn(dm, img), mountpoint: path.join(dir, 'm') });
  const again: DmModel = { active: false, ext4: false, mounted: false, mkfsCount: 0 }; // filesystem "lost"
  await t.throwsAsync(prepareStateDisk({ device: img, key: KEY, open: true, runner: dmStandIn(again, img), mountpoint: path.join(dir, 'm') }), { code: 'DISK_FOREIGN_DATA' });
  t.is(again.mkfsCount, 0);
});
