import test from 'ava';
import { run } from '../../lib/exec.js';

test('run passes stdin and returns stdout', async (t) => {
  const r = await run('cat', [], { input: 'hello' });
  t.is(r.stdout, 'hello');
});

test('a non-zero exit is EXEC_FAILED with secrets hidden in the message and the log', async (t) => {
  const lines: string[] = [];
  const e = await t.throwsAsync(run('sh', ['-c', 'echo "oops topsecret" >&2; exit 3', 'topsecret'], { secrets: ['topsecret'], log: (l) => lines.push(l) }), {
    code: 'EXEC_FAILED',
  });
  t.false(e!.message.includes('topsecret'));
  t.false(lines.join('\n').includes('topsecret'));
});

test('a missing tool is TOOL_MISSING', async (t) => {
  await t.throwsAsync(run('sextant-no-such-tool', []), { code: 'TOOL_MISSING' });
});

test('a command over its time limit is TIMEOUT; one that ignores SIGTERM still ends', async (t) => {
  await t.throwsAsync(run('sleep', ['5'], { timeoutMs: 100 }), { code: 'TIMEOUT' });
  const t0 = Date.now();
  await t.throwsAsync(run('sh', ['-c', 'trap "" TERM; sleep 30'], { timeoutMs: 100 }), { code: 'TIMEOUT' });
  t.true(Date.now() - t0 < 15_000);
});

test('a tool that exits without reading a large stdin is judged by its exit code; env extends the parent env; okExitCodes', async (t) => {
  const r = await run('sh', ['-c', 'exit 2'], { input: Buffer.alloc(4 << 20, 1), okExitCodes: [2] });
  t.is(r.exitCode, 2);
  const e = await run('sh', ['-c', 'printf "%s %s" "$SEXTANT_X" "$PATH"'], { env: { SEXTANT_X: 'y' } });
  t.is(e.stdout, `y ${process.env.PATH}`);
  const bin = await run('printf', ['\\000\\377'], { binary: true });
  t.deepEqual([...bin.stdoutBytes], [0, 255]);
});
