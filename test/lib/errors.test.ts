import test from 'ava';
import { SextantError, INPUT_ERROR_CODES, FAILURE_ERROR_CODES, fail } from '../../lib/errors.js';

test('input codes and failure codes do not overlap', (t) => {
  const input = new Set<string>(INPUT_ERROR_CODES);
  t.deepEqual(FAILURE_ERROR_CODES.filter((c) => input.has(c)), []);
});

test('fail() throws a SextantError with code, message and cause', (t) => {
  const cause = new Error('inner');
  const e = t.throws(() => fail('PE_MALFORMED', 'bad header', cause), { instanceOf: SextantError, code: 'PE_MALFORMED' });
  t.is(e?.cause, cause);
  t.true(e?.isInputError);
  t.deepEqual(JSON.parse(JSON.stringify(e)), { code: 'PE_MALFORMED', message: 'bad header' });
});
