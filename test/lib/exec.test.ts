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
