import { SextantError, isSextantError } from '../lib/errors.js';
import { run, type ExecLogger } from '../lib/exec.js';

/**
 * Registers a bootstrap token with the cluster before the node gets it: a node cannot use a
 * token the API server does not know. The key service cannot reach an API server itself here,
 * so an operator-supplied command does it (e.g. a script that runs `kubectl apply -f -` or
 * `kubeadm token create TOKEN --ttl ...`). The command gets everything on stdin as JSON, never
 * on its command line or in a file: the token secret is a credential.
 *
 *   stdin: {"tokenId", "tokenSecret", "token", "ttlSeconds", "expiresAt", "nodeName",
 *           "usages": ["authentication","signing"], "groups": ["system:bootstrappers:kubeadm:default-node-token"],
 *           "secret": <the kube-system bootstrap-token Secret manifest (JSON) kubectl can apply>}
 *
 * A non-zero exit refuses the release (TOKEN_REGISTRATION_FAILED): no ticket for a token that
 * would not work.
 */

export interface TokenRegistration {
  token: string;
  expiresAt: string;
  ttlSeconds: number;
  nodeName: string;
}

export const BOOTSTRAP_GROUP = 'system:bootstrappers:kubeadm:default-node-token';

/** The Secret kubeadm itself creates for a bootstrap token (bootstrap.kubernetes.io/token). */
export function bootstrapTokenSecret(r: TokenRegistration): Record<string, unknown> {
  const [id, secret] = r.token.split('.');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `bootstrap-token-${id}`, namespace: 'kube-system' },
    type: 'bootstrap.kubernetes.io/token',
    stringData: {
      description: `sextant key service: join of ${r.nodeName}`,
      'token-id': id,
      'token-secret': secret,
      expiration: r.expiresAt,
      'usage-bootstrap-authentication': 'true',
      'usage-bootstrap-signing': 'true',
      'auth-extra-groups': BOOTSTRAP_GROUP,
    },
  };
}

export async function registerBootstrapToken(command: string, r: TokenRegistration, log?: ExecLogger): Promise<void> {
  const [id, secret] = r.token.split('.');
  const payload = JSON.stringify({
    tokenId: id,
    tokenSecret: secret,
    token: r.token,
    ttlSeconds: r.ttlSeconds,
    expiresAt: r.expiresAt,
    nodeName: r.nodeName,
    usages: ['authentication', 'signing'],
    groups: [BOOTSTRAP_GROUP],
    secret: bootstrapTokenSecret(r),
  });
  // The command's output is never shown anywhere (not in the refusal, not in the audit log,
  // not in the service's log): it had the secret on stdin, and masking exact copies misses
  // a base64 or reversed one. Only its exit status is reported.
  let exitCode: number;
  try {
    exitCode = (await run(command, [id], { input: payload, secrets: [secret, r.token], timeoutMs: 60_000, log, okExitCodes: ANY_EXIT })).exitCode;
  } catch (e) {
    const why = isSextantError(e, 'TIMEOUT') ? 'timed out after 60 s' : isSextantError(e, 'TOOL_MISSING') ? 'was not found' : 'could not be run';
    throw new SextantError({ code: 'TOKEN_REGISTRATION_FAILED', message: `the token command ${why}; bootstrap token ${id} is not registered` });
  }
  if (exitCode !== 0) {
    const status = exitCode < 0 ? 'was killed by a signal' : `exited with status ${exitCode}`;
    throw new SextantError({ code: 'TOKEN_REGISTRATION_FAILED', message: `the token command ${status} (its output is not shown: it saw the token); bootstrap token ${id} is not registered` });
  }
}

/** Every exit status comes back as a result, so no error message ever carries the command's stderr. */
const ANY_EXIT = [-1, ...Array.from({ length: 255 }, (_, i) => i + 1)];
