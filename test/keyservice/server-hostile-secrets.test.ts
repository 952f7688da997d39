/**
 * Issue 11, finding 7, with a real swtpm and the key service on real HTTPS: a nonce is
 * consumed by a refused quote (round 2 and the confirm round), and a token command that
 * prints the bootstrap token's secret in disguise leaks none of it into the node's answer
 * or the audit log.
 */
import test from 'ava';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Tpm2ToolsAttester } from '../helpers/tpm2-tools-attester.js';
import { attestSteps } from '../helpers/attest-steps.js';
import { makeClusterCa } from '../helpers/cluster-ca.js';
import { startSwtpmKeyService, type SwtpmKeyService } from '../helpers/swtpm-keyservice.js';
import type { RunningKeyService } from '../../keyservice/service.js';
import { postJson, type PinnedEndpoint } from '../../agent/attest/transport.js';
import { ROUTES, type ConfirmRequest } from '../../protocol/messages.js';
import { confirmQualifyingData } from '../../protocol/seal.js';
import { assertNonceResponse } from '../../protocol/validate.js';

let world: SwtpmKeyService;
let ta: Tpm2ToolsAttester;
let dir: string;
let svc: RunningKeyService;
let ep: PinnedEndpoint;

const TOKEN_CMD = `#!/bin/sh
# Records the secret it was given (so the test knows it), then prints it disguised and fails.
d=$(dirname "$0"); in=$(cat)
sec=$(printf %s "$in" | sed -n 's/.*"tokenSecret":"\\([a-z0-9]*\\)".*/\\1/p')
printf %s "$sec" > "$d/secret"
printf %s "$sec" | base64; printf %s "$sec" | rev
printf %s "$sec" | base64 >&2; printf %s "$sec" | rev >&2
exit 1
`;

test.before(async () => {
  world = await startSwtpmKeyService('ks-secrets-', async (d) => {
    const ca = await makeClusterCa(d);
    const tokenCommand = path.join(d, 'register-token');
    await writeFile(tokenCommand, TOKEN_CMD);
    await chmod(tokenCommand, 0o700);
    return { join: { apiServerEndpoint: '10.0.0.1:6443', caCert: ca.caCert, caKey: ca.caKey, tokenTtlSeconds: 600, certDays: 1, tokenCommand } };
  });
  ({ ta, dir, svc, ep } = world);
});

test.after.always(async () => {
  await world?.stop();
});

async function freshNonce(): Promise<Buffer> {
  const n = await postJson(ep, ROUTES.nonce, {});
  assertNonceResponse(n);
  return Buffer.from(n.nonce, 'base64');
}

/** The quote signature with its last byte flipped: still well-formed, no longer valid. */
function corrupt(b64sig: string): string {
  const b = Buffer.from(b64sig, 'base64');
  b[b.length - 1] ^= 0x01;
  return b.toString('base64');
}

test.serial('round 2: a nonce whose quote was refused (QUOTE_SIGNATURE_INVALID) is used up: replaying it is NONCE_REPLAYED', async (t) => {
  const nonce = await freshNonce();
  await t.throwsAsync(attestSteps(ep, ta, { nonce, role: 'rejoin', mutate: (r) => ({ ...r, quoteSignature: corrupt(r.quoteSignature) }) }), { code: 'QUOTE_SIGNATURE_INVALID' });
  await t.throwsAsync(attestSteps(ep, ta, { nonce, role: 'rejoin' }), { code: 'NONCE_REPLAYED' });
  // A fresh nonce still works: the refusal cost the node nothing but that nonce.
  const ok = await attestSteps(ep, ta, { role: 'rejoin' });
  t.regex(ok.secrets.clusterId, /^[0-9a-f]{64}$/);
});

test.serial('confirm round: a nonce whose quote was refused is used up as well', async (t) => {
  const released = await attestSteps(ep, ta, { role: 'rejoin' });
  const session = released.secrets.confirm!;
  const nonce = await freshNonce();
  const q = await ta.quote(confirmQualifyingData(session.id, nonce));
  const req: ConfirmRequest = { v: 1, confirmId: session.id, nonce: nonce.toString('base64'), quoteAttest: Buffer.from(q.attest).toString('base64'), quoteSignature: Buffer.from(q.signature).toString('base64'), pcrs: q.pcrs };
  await t.throwsAsync(postJson(ep, ROUTES.confirm, { ...req, quoteSignature: corrupt(req.quoteSignature) }), { code: 'QUOTE_SIGNATURE_INVALID' });
  // The untouched quote for the same nonce: without the lock it would reach checkLock; the nonce stops it first.
  await t.throwsAsync(postJson(ep, ROUTES.confirm, req), { code: 'NONCE_REPLAYED' });
});

test.serial('a token command printing the secret base64-encoded and reversed: the refusal and the audit log carry its exit status, none of its output', async (t) => {
  const e = await t.throwsAsync(attestSteps(ep, ta, { role: 'join' }), { code: 'TOKEN_REGISTRATION_FAILED' });
  const secret = await readFile(path.join(dir, 'secret'), 'utf8');
  t.regex(secret, /^[a-z0-9]{16}$/);
  const audit = await readFile(svc.auditLog, 'utf8');
  const last = JSON.parse(audit.trimEnd().split('\n').at(-1)!) as { decision: string; code: string; reason: string };
  t.like(last, { decision: 'refuse', code: 'TOKEN_REGISTRATION_FAILED' });
  t.regex(last.reason, /exited with status 1/);
  for (const form of [secret, Buffer.from(secret).toString('base64'), [...secret].reverse().join('')]) {
    t.false(e!.message.includes(form), `the answer leaked ${form}`);
    t.false(audit.includes(form), `the audit log leaked ${form}`);
  }
});
