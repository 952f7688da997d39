/**
 * Bootstrap token registration through an operator command, with stand-in commands (no API
 * server here): the command gets the token on stdin only, with the bootstrap-token Secret
 * kubeadm would create; a failing command refuses the ticket without leaking the secret.
 */
import test from 'ava';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeJoinTicket, type JoinConfig } from '../../keyservice/join-ticket.js';
import { makeClusterCa } from '../helpers/cluster-ca.js';

async function world(script: string) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ks-token-'));
  const ca = await makeClusterCa(dir);
  const cmd = path.join(dir, 'register-token');
  await writeFile(cmd, `#!/bin/sh\n${script}\n`);
  await chmod(cmd, 0o700);
  const cfg: JoinConfig = { apiServerEndpoint: '10.0.0.1:6443', tokenTtlSeconds: 900, certDays: 1, ca: await ca.load(), tokenCommand: cmd };
  return { dir, cfg, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

test('the token command gets the released token (id as argument, everything on stdin) and a kube-system bootstrap-token Secret', async (t) => {
  // The stand-in keeps its argv and stdin and checks it got no secret on the command line.
  const w = await world('d=$(dirname "$0"); echo "$#:$*" > "$d/argv"; cat > "$d/stdin.json"');
  t.teardown(w.cleanup);
  const now = new Date('2030-01-01T00:00:00Z');
  const ticket = await makeJoinTicket(w.cfg, 'worker-3', undefined, now);
  const [id, secret] = ticket.token.split('.');
  t.is((await readFile(path.join(w.dir, 'argv'), 'utf8')).trim(), `1:${id}`);
  const got = JSON.parse(await readFile(path.join(w.dir, 'stdin.json'), 'utf8')) as Record<string, unknown> & { secret: { metadata: Record<string, string>; type: string; stringData: Record<string, string> } };
  t.like(got, { tokenId: id, tokenSecret: secret, token: ticket.token, ttlSeconds: 900, expiresAt: '2030-01-01T00:15:00.000Z', nodeName: 'worker-3' });
  t.is(ticket.tokenExpiresAt, '2030-01-01T00:15:00.000Z');
  // The shape kubeadm's bootstrap tokens have (k8s.io/cluster-bootstrap: bootstrap-token-<id> in kube-system).
  t.like(got.secret, { apiVersion: 'v1', kind: 'Secret', type: 'bootstrap.kubernetes.io/token', metadata: { name: `bootstrap-token-${id}`, namespace: 'kube-system' } });
  t.like(got.secret.stringData, {
    'token-id': id,
    'token-secret': secret,
    expiration: '2030-01-01T00:15:00.000Z',
    'usage-bootstrap-authentication': 'true',
    'usage-bootstrap-signing': 'true',
    'auth-extra-groups': 'system:bootstrappers:kubeadm:default-node-token',
  });
});

test('a failing token command refuses the ticket (TOKEN_REGISTRATION_FAILED) with its exit status only, never its output', async (t) => {
  const w = await world('tok=$(cat); echo "apiserver said no to $tok" >&2; exit 3');
  t.teardown(w.cleanup);
  const e = await t.throwsAsync(makeJoinTicket(w.cfg, 'worker-3', undefined, new Date()), { code: 'TOKEN_REGISTRATION_FAILED' });
  t.regex(e!.message, /exited with status 3/);
  t.notRegex(e!.message, /apiserver said no/);
  t.notRegex(e!.message, /[a-z0-9]{6}\.[a-z0-9]{16}/);
});

test('a token command that prints the secret base64-encoded and reversed: none of it reaches the error or the exec log', async (t) => {
  // The stand-in records the secret it was given (so the test knows it) and prints it disguised.
  const w = await world(
    [
      'd=$(dirname "$0"); in=$(cat); sec=$(printf %s "$in" | sed -n \'s/.*"tokenSecret":"\\([a-z0-9]*\\)".*/\\1/p\')',
      'printf %s "$sec" > "$d/secret"',
      'printf %s "$sec" | base64; printf %s "$sec" | rev; printf %s "$sec" | base64 >&2; printf %s "$sec" | rev >&2; printf %s "$sec" | od -An -tx1 | tr -d " \\n" >&2',
      'exit 1',
    ].join('\n'),
  );
  t.teardown(w.cleanup);
  const lines: string[] = [];
  const e = await t.throwsAsync(makeJoinTicket(w.cfg, 'worker-3', undefined, new Date(), (l) => lines.push(l)), { code: 'TOKEN_REGISTRATION_FAILED' });
  const secret = await readFile(path.join(w.dir, 'secret'), 'utf8');
  t.regex(secret, /^[a-z0-9]{16}$/);
  const forms = [secret, Buffer.from(secret).toString('base64'), [...secret].reverse().join(''), Buffer.from(secret).toString('hex')];
  const seen = [e!.message, ...lines].join('\n');
  for (const f of forms) t.false(seen.includes(f), `leaked ${f}`);
  t.regex(e!.message, /exited with status 1/);
});
