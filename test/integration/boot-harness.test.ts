import test from 'ava';
import { assertBootToolsPresent, bootAndCapture, processAlive } from '../helpers/qemu.js';

test.serial('a missing qemu/OVMF/swtpm is a loud TOOL_MISSING naming what is missing, not a skip', async (t) => {
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    const e = await t.throwsAsync(assertBootToolsPresent(), { code: 'TOOL_MISSING' });
    t.regex(e!.message, /qemu-system-x86_64/);
    t.regex(e!.message, /swtpm/);
  } finally {
    process.env.PATH = saved;
  }
});

test.serial('a boot that does not finish is TIMEOUT with the serial log, and qemu and swtpm are stopped by PID', async (t) => {
  const lines: string[] = [];
  // /bin/true is no EFI application: the firmware never reaches the capture, the timer fires.
  const e = await t.throwsAsync(bootAndCapture({ efiBinary: '/bin/true', timeoutMs: 4_000, log: (l) => lines.push(l) }), { code: 'TIMEOUT' });
  t.regex(e!.message, /did not finish its capture/);
  const pids = lines.map((l) => /^(qemu|swtpm) pid (\d+)$/.exec(l)).filter((m) => m !== null).map((m) => Number(m![2]));
  t.is(pids.length, 2, 'both processes were started');
  for (const pid of pids) t.false(processAlive(pid), `process ${pid} is gone`);
});
