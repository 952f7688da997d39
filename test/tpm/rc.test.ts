import test from 'ava';
import { execFileSync } from 'node:child_process';
import { decodeRc, isRetryable, TpmResponseError } from '../../tpm/rc.js';
import { isSextantError } from '../../lib/errors.js';

// Known answers worked out from Part 2 §6.6 (RC_FMT1 0x080, RC_VER1 0x100, RC_WARN 0x900,
// TPM_RC_P 0x040, TPM_RC_S 0x800, TPM_RC_1..F 0x100..0xF00).
const KNOWN: [number, string, string][] = [
  [0x000, 'TPM_RC_SUCCESS', ''],
  [0x18b, 'TPM_RC_HANDLE', 'handle 1'],
  [0x28b, 'TPM_RC_HANDLE', 'handle 2'],
  [0x902, 'TPM_RC_OBJECT_MEMORY', ''],
  [0x99d, 'TPM_RC_POLICY_FAIL', 'session 1'],
  [0x9a2, 'TPM_RC_BAD_AUTH', 'session 1'],
  [0x98e, 'TPM_RC_AUTH_FAIL', 'session 1'],
  [0x1df, 'TPM_RC_INTEGRITY', 'parameter 1'],
  [0x2c4, 'TPM_RC_VALUE', 'parameter 2'],
  [0x8c5, 'TPM_RC_HIERARCHY', 'parameter 8'],
  [0xfc4, 'TPM_RC_VALUE', 'parameter 15'],
  [0x084, 'TPM_RC_VALUE', ''],
  [0x101, 'TPM_RC_FAILURE', ''],
  [0x143, 'TPM_RC_COMMAND_CODE', ''],
  [0x14a, 'TPM_RC_NV_UNINITIALIZED', ''],
  [0x921, 'TPM_RC_LOCKOUT', ''],
  [0x922, 'TPM_RC_RETRY', ''],
  [0x911, 'TPM_RC_REFERENCE_H1', ''],
  [0x91e, 'TPM_RC_REFERENCE_S6', ''],
  [0x0b0143, 'TPM_RC_COMMAND_CODE', ''],
];

for (const [rc, name, where] of KNOWN) {
  test(`0x${rc.toString(16)} is ${name}${where ? ` (${where})` : ''}`, (t) => {
    const d = decodeRc(rc);
    t.is(d.name, name);
    t.true(d.text.startsWith(where ? `${name} (${where}):` : `${name}:`), d.text);
  });
}

test('the layer byte is named; software layers are not decoded as TPM codes', (t) => {
  t.is(decodeRc(0x0b0143).layer, 'RESMGR_TPM');
  t.like(decodeRc(0x70007), { layer: 'ESYS', kind: 'tss', name: 'TSS2_ESYS_RC_0x7' });
  t.like(decodeRc(0xa000a), { layer: 'TCTI', kind: 'tss' });
  t.like(decodeRc(0x500), { kind: 'vendor' });
  t.like(decodeRc(0x03f), { kind: 'tpm12' });
});

test('retryable warnings', (t) => {
  t.true(isRetryable(0x922)); // RETRY
  t.true(isRetryable(0x908)); // YIELDED
  t.true(isRetryable(0x90a)); // TESTING
  t.false(isRetryable(0x921)); // LOCKOUT: retrying makes it worse
  t.false(isRetryable(0x902)); // OBJECT_MEMORY: needs a flush, not a retry
  t.false(isRetryable(0x18b));
});

test('TpmResponseError carries code TPM_RC, rc and the searchable name', (t) => {
  const e = new TpmResponseError('TPM2_ActivateCredential', 0x9a2);
  t.true(isSextantError(e, 'TPM_RC'));
  t.is(e.rc, 0x9a2);
  t.is(e.rcName, 'TPM_RC_BAD_AUTH');
  t.regex(e.message, /^TPM2_ActivateCredential: TPM_RC_BAD_AUTH \(session 1\): .* \(0x9a2\)$/);
});

/**
 * tpm2_rc_decode (tpm2-tools, tpm2-tss's decoder) as an independent oracle for the format bits:
 * error/warning, which handle/session/parameter. It masks the number with 3 bits, so only
 * numbers 1-7 are compared (parameters 8-15 are checked by the known answers above).
 */
test('format decoding agrees with tpm2_rc_decode', (t) => {
  const codes: number[] = [];
  for (const n of [0x01, 0x04, 0x0b, 0x1d, 0x1f, 0x22]) {
    for (const prefix of [0x080, 0x180, 0x580, 0x980, 0xd80]) codes.push(prefix + n);
    for (const p of [0x0c0, 0x1c0, 0x7c0]) codes.push(p + n);
  }
  codes.push(0x100, 0x101, 0x143, 0x14c, 0x902, 0x903, 0x921, 0x922, 0x910, 0x918);
  for (const rc of codes) {
    const oracle = execFileSync('tpm2_rc_decode', [`0x${rc.toString(16)}`], { encoding: 'utf8' }).trim();
    const m = /^tpm:(handle|session|parameter|warn|error)\(([^)]*)\)/.exec(oracle);
    if (!m) return t.fail(`unexpected tpm2_rc_decode output for 0x${rc.toString(16)}: ${oracle}`);
    const d = decodeRc(rc);
    const [, kind, num] = m;
    const n = num === 'unk' ? undefined : Number(num);
    if (kind === 'warn') t.is(d.kind, 'warning', oracle);
    else if (kind === 'error') t.is(d.kind, 'error', oracle);
    else {
      t.is(d[kind as 'handle' | 'session' | 'parameter'], n, `${oracle} vs ${d.text}`);
    }
  }
});

test('fast-check: every 32-bit code decodes to a name and a one-line text, never throws', async (t) => {
  const fc = (await import('fast-check')).default;
  fc.assert(
    fc.property(fc.nat({ max: 0xffffffff }), (rc) => {
      const d = decodeRc(rc);
      return d.name.length > 0 && !d.text.includes('\n') && d.rc === rc;
    }),
    { numRuns: 5000 },
  );
  t.pass();
});
