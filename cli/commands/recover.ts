import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { bool, str, strs, type CommandSpec } from '../command.js';
import { requireStr } from '../args.js';
import { fail } from '../../lib/errors.js';
import { zeroize } from '../../lib/bytes.js';
import { postJson, normalizeFingerprint } from '../../agent/attest/transport.js';
import { AuditLog } from '../../keyservice/audit/log.js';
import { lockAuditLog } from '../../keyservice/audit-writer-lock.js';
import { LocalBindingStore } from '../../keyservice/binding/local-store.js';
import { loadReferenceSet } from '../../attestation/policy/load-reference.js';
import { recoverNode, type RecoverNodeResult } from '../../keyservice/recover.js';
import { readSecretFile } from '../../keyservice/state-dir.js';
import { loadCaCertificates } from '../../attestation/tpm/ek-chain.js';

// ---- sextant recover (engineer recovery) ----

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    fail('FILE_NOT_FOUND', `cannot read ${what} ${file}`, cause);
  }
}

/** The client identity must parse and match, or the TLS layer fails later with an untyped error. */
function assertIdentity(keyPem: string, certPem: string): void {
  let ok = false;
  try {
    ok = new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch (cause) {
    fail('KEY_INVALID', 'the TLS client identity (--identity-key/--identity-cert) does not parse as a PEM key and certificate', cause);
  }
  if (!ok) fail('KEY_INVALID', 'the TLS client key (--identity-key) does not belong to its certificate (--identity-cert)');
}

const recover: CommandSpec<{ ok: true } & RecoverNodeResult> = {
  path: ['recover'],
  summary: "attest a node's recovery endpoint like the key service would, then send it its disk key",
  description: `
For a node whose key service is unreachable or refusing and whose agent serves the recovery
endpoint (agent config recovery.enabled). The node's certificate fingerprint is in its log
("recovery endpoint listening ... certificate sha256:..."); the connection is pinned to it.
Before anything secret is sent the node is verified exactly as the key service verifies it:
EK certificate chain (--ek-ca), AK bound to the EK by credential activation, quote signature,
our nonce and the node's one-time key in the quote, PCR digest, event log replay when sent,
the signed measurements (FILE.sig by --measurements-key), and PCR 15 (zero, or this
cluster's lock). A refusal exits 1 with the stage's code and sends nothing. Then the disk
key HKDF(master secret, salt, "key-"+disk UUID) and the cluster ID go to the node, sealed
to its one-time key. Prints the SHA-256 of the disk key, never the key.
The disk's binding (docs/disk-binding.md) is respected as the key service does: a disk bound
to another node's EK is DISK_BOUND_ELSEWHERE (rebind it first, deliberately), an unbound one
is bound to this node. The bindings are read from --state-dir (default: the folder of
--master-secret); point it at the key service's state directory.

The node talks only to a TLS client it has pinned in its measured configuration: the key
service's own certificate (keyservice.fingerprint in the image's agent.json or on the kernel
command line) or an admin key listed in recovery.adminKeys. By default this command presents
the key service's identity from its state dir (tls-key.pem and tls-cert.pem in --state-dir);
--identity-key/--identity-cert present an admin key instead. Anyone else is
refused with RECOVERY_UNAUTHORIZED before the node does any TPM work. The node accepts the key
only if it opens its state disk (else DISK_WRONG_KEY, and its endpoint stays open).`,
  options: {
    node: { type: 'string', valueName: 'https://HOST:PORT', description: "the node's recovery endpoint (from its log)", required: true },
    'node-fingerprint': { type: 'string', valueName: 'sha256:HEX', description: "the node's certificate fingerprint (from its log)", required: true },
    'master-secret': { type: 'string', valueName: 'FILE', description: "the key service's master secret (32 raw bytes, 0600)", required: true },
    salt: { type: 'string', valueName: 'FILE', description: 'its salt (default: the file "salt" beside --master-secret)' },
    measurements: { type: 'string', valueName: 'FILE', description: 'signed measurements file', required: true },
    'measurements-sig': { type: 'string', valueName: 'FILE', description: 'its signature (default FILE.sig)' },
    'measurements-key': { type: 'string', valueName: 'PUB.pem', description: 'public key the measurements are signed with', required: true },
    'ek-ca': { type: 'string', multiple: true, valueName: 'CA.pem', description: 'trusted EK certificate CA', required: true },
    'require-event-log': { type: 'boolean', description: 'refuse a node that sends no firmware event log' },
    'audit-log': { type: 'string', valueName: 'FILE', description: 'append the decisions to this hash-chained audit log' },
    'state-dir': { type: 'string', valueName: 'DIR', description: "the key service's state directory, for its disk bindings (default: the folder of --master-secret)" },
    'identity-key': { type: 'string', valueName: 'KEY.pem', description: 'TLS client key the node has pinned (default: tls-key.pem in --state-dir)' },
    'identity-cert': { type: 'string', valueName: 'CERT.pem', description: 'its certificate (default: tls-cert.pem in --state-dir)' },
  },
  async run(ctx) {
    const v = ctx.values;
    const node = requireStr(v, 'node');
    if (!/^https:\/\/[^\s/]+\/?$/.test(node)) fail('USAGE', `--node must be https://HOST:PORT, got "${node}"`);
    const fingerprint = normalizeFingerprint(requireStr(v, 'node-fingerprint'));
    const masterFile = requireStr(v, 'master-secret');
    const measurements = requireStr(v, 'measurements');
    const measurementsKey = requireStr(v, 'measurements-key');
    const ekCaFiles = strs(v, 'ek-ca');

    // Everything that can be refused locally is checked before the node is contacted.
    const reference = await loadReferenceSet(measurements, str(v, 'measurements-sig') ?? measurements + '.sig', await readText(measurementsKey, 'measurements public key'));
    const ekCas = loadCaCertificates(await Promise.all(ekCaFiles.map((f) => readText(f, 'EK CA'))));
    if (ekCas.length === 0) fail('CONFIG_INVALID', 'no certificate found in the --ek-ca files');
    const stateDir = str(v, 'state-dir') ?? path.dirname(masterFile);
    const auditFile = str(v, 'audit-log');
    // The service's log has one writer: a running service holding it is AUDIT_LOG_IN_USE.
    const auditLock = auditFile ? await lockAuditLog(auditFile, 'sextant recover') : undefined;
    const audit = auditFile ? await AuditLog.open(auditFile).catch(async (e: unknown) => {
      await auditLock?.release();
      throw e;
    }) : undefined;
    const masterSecret = await readSecretFile(masterFile);
    try {
      const client = {
        keyPem: await readText(str(v, 'identity-key') ?? path.join(stateDir, 'tls-key.pem'), 'TLS client key (--identity-key)'),
        certPem: await readText(str(v, 'identity-cert') ?? path.join(stateDir, 'tls-cert.pem'), 'TLS client certificate (--identity-cert)'),
      };
      assertIdentity(client.keyPem, client.certPem);
      const salt = await readSecretFile(str(v, 'salt') ?? path.join(path.dirname(masterFile), 'salt'));
      try {
        ctx.log(`recover: verifying ${node} against ${reference.label}`);
        const endpoint = { url: node, fingerprint, peer: 'node', client };
        const r = await recoverNode({
          post: (route, body) => postJson(endpoint, route, body),
          node,
          masterSecret,
          salt,
          references: [reference],
          ekCas,
          requireEventLog: bool(v, 'require-event-log'),
          audit,
          diskBindings: LocalBindingStore.inStateDir(stateDir),
        });
        return { ok: true, ...r };
      } finally {
        zeroize(salt);
      }
    } finally {
      zeroize(masterSecret);
      await audit?.close();
      await auditLock?.release();
    }
  },
  render: (r) =>
    [
      `node ${r.node} verified (PCR 15 ${r.clusterLock}, measurements ${r.measurements}) and recovered`,
      `disk ${r.diskUuid}: key sent, sha256 ${r.diskKeySha256}` +
        (r.diskBinding ? ` (${r.diskBinding.state === 'bound-now' ? 'now bound' : 'bound'} to this node, ek-sha256 ${r.diskBinding.ekPublicSha256}, revision ${r.diskBinding.revision})` : ''),
      `cluster ${r.clusterId}`,
      ...r.warnings.map((w) => `warning: ${w}`),
    ].join('\n'),
};

export const recoverCommands: CommandSpec<any>[] = [recover];
