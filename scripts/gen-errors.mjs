#!/usr/bin/env node
// Writes docs/errors.md from lib/errors.ts (run after npm run build): every code, its exit code,
// its meaning or the documents that explain it. test/lib/error-codes.test.ts checks it is current.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
process.chdir(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'));
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
const { INPUT_ERROR_CODES, FAILURE_ERROR_CODES } = await import(new URL('../dist/lib/errors.js', import.meta.url).href);
const docs = readdirSync('docs').filter((f) => f.endsWith('.md') && f !== 'errors.md' && f !== 'cli.md').sort();
const text = Object.fromEntries(docs.map((f) => [f, readFileSync('docs/' + f, 'utf8')]));
const meaning = {
  USAGE: 'a command line the command does not take (unknown option, missing value or argument); `--help` shows the usage',
  INVALID_ARGUMENT: 'an option or argument value out of its range or shape',
  PE_MALFORMED: 'a file that is not a well-formed PE/COFF image (EFI binary, UKI, kernel)',
  UKI_MALFORMED: 'a PE image that is not a UKI systemd-stub can boot (no .linux, overlapping or oversized sections)',
  SB_KEYS_INVALID: 'a Secure Boot key folder or EFI signature list that cannot be read (docs/secure-boot.md)',
  VARSTORE_INVALID: 'not an EDK2/OVMF variable store in the authenticated format, or one whose variables overrun it',
  PE_SIGNATURE_INVALID: 'a PE attribute certificate table that is not one Authenticode PKCS#7 signature carrying its signer',
  EXEC_FAILED: 'an external tool (cryptsetup, openssl, mkosi, osslsigncode, ...) exited non-zero; the message names the command (secrets masked)',
  IO_FAILED: 'a file or device could not be read or written',
  IMAGE_MISMATCH: 'a disk image or release that is not what the command expects (no ESP, no UKI, digests that differ from SHA256SUMS)',
  RATE_LIMITED: 'the key service or recovery endpoint refused a request over its per-address rate (HTTP 429); retry later',
  KEYSERVICE_UNREACHABLE: 'the agent could not reach the key service (connection, TLS or timeout); retried with backoff',
  KEYSERVICE_REFUSED: 'the key service answered with a refusal the agent cannot classify further; the message carries the service\'s code',
  DISK_NOT_FOUND: 'no GPT partition labelled sextant-state (and of the configured type) on the node',
  DISK_STEP_FAILED: 'opening, formatting, mounting or marking the state disk failed after it was classified',
  JOIN_FAILED: 'kubeadm join (or starting the kubelet on a rejoin) failed after its bounded retries',
  RECOVERY_FAILED: 'the admin\'s `sextant recover` could not complete against the node (the message says which step)',
  BUILD_FAILED: 'the image build (mkosi or a post-processing step) failed; the message names the stage',
  COMPONENT_HASH_MISMATCH: 'a pinned Kubernetes component whose SHA-256 differs from its pin',
  TIMEOUT: 'an operation with a hard limit (a boot, an external tool, a wait) ran out of time',
};
const row = (c, exit) => {
  const where = docs.filter((f) => text[f].includes(c)).map((f) => `[${f}](${f})`);
  if (!where.length && !meaning[c]) throw new Error(`no meaning for ${c}`);
  return `| \`${c}\` | ${exit} | ${meaning[c] ?? ''}${meaning[c] && where.length ? '; ' : ''}${where.length ? 'see ' + where.join(', ') : ''} |`;
};
const out = `# Error codes

Every failure is a \`SextantError\` with one stable code from \`lib/errors.ts\`: the CLI prints
\`sextant: CODE: message\` (with \`--json\`: \`{"ok":false,"code","message"}\`), the key service
answers \`{"ok":false,"code","message"}\`, and tests assert codes, never message text. Exit 2 for
bad input, 1 for every other failure. \`test/lib/error-codes.test.ts\` checks that this table
lists exactly the codes \`lib/errors.ts\` defines and that each one is raised somewhere in the
code (not only in tests). Regenerate the table with \`node scripts/gen-errors.mjs\`.

## Bad input (exit 2)

| code | exit | meaning |
|---|---|---|
${INPUT_ERROR_CODES.map((c) => row(c, 2)).join('\n')}

## Failures (exit 1)

| code | exit | meaning |
|---|---|---|
${FAILURE_ERROR_CODES.map((c) => row(c, 1)).join('\n')}
`;
writeFileSync('docs/errors.md', out);
console.log('wrote docs/errors.md', INPUT_ERROR_CODES.length + FAILURE_ERROR_CODES.length);
