import type { CommandSpec } from '../command.js';
import { bool, str, strs } from '../command.js';
import { fail } from '../../lib/errors.js';
import { writeFile } from 'node:fs/promises';
import { headPath, verifyAuditBytes, verifyAuditLog } from '../../keyservice/audit/log.js';
import { readConfigFile, resolveConfig, type KeyServiceConfig } from '../../keyservice/config.js';
import { startKeyService } from '../../keyservice/service.js';
import { ETCD_OPTIONS, etcdFlags } from './etcd-options.js';
import { keyserviceDiskCommands } from './keyservice-disk.js';
import { keyserviceMeasurementsCommands } from './keyservice-measurements.js';

// ---- sextant keyservice (the server) ----

interface ServeResult {
  ok: true;
  stopped: true;
  url: string;
  fingerprint: string;
}

function flagConfig(v: Record<string, unknown>): Partial<KeyServiceConfig> {
  const s = (k: string) => str(v as never, k);
  const num = (k: string) => (s(k) === undefined ? undefined : Number(s(k)));
  return {
    listen: s('listen'),
    stateDir: s('state-dir'),
    measurements: s('measurements'),
    measurementsSig: s('measurements-sig'),
    measurementsKey: s('measurements-key'),
    previousMeasurements: s('previous-measurements'),
    ekCa: strs(v as never, 'ek-ca'),
    ekCaStore: strs(v as never, 'ek-ca-store'),
    ekCaStoreDir: strs(v as never, 'ek-ca-store-dir'),
    auditLog: s('audit-log'),
    adminSocket: s('admin-socket'),
    tlsCert: s('tls-cert'),
    tlsKey: s('tls-key'),
    requireEventLog: bool(v as never, 'require-event-log') || undefined,
    nonceTtlSeconds: num('nonce-ttl'),
    confirmTtlSeconds: num('confirm-ttl'),
    nodeInventory: s('node-inventory'),
    maxRequestBytes: num('max-request-bytes'),
    store: s('store') as KeyServiceConfig['store'],
    etcd: etcdFlags(v),
  };
}

const serve: CommandSpec<ServeResult> = {
  path: ['keyservice'],
  summary: 'run the key service: verify node attestations, release disk keys and join tickets',
  description: `
On first start creates in --state-dir: master-secret and salt (32 random bytes each, 0600),
a TLS key and self-signed certificate. Prints the certificate fingerprint (sha256:<hex of
the DER certificate>, also written to STATE/tls-fingerprint) for agents to pin. Refuses to
start when the measurements signature (FILE.sig) does not verify. Runs until SIGINT/SIGTERM.
Every key option can also come from --config FILE (JSON, same names in camelCase).
With --tpm-tcti (or "attestation": {"tcti", "ekChain"} in the file) the service also answers
agents that check it first: a quote of its own PCRs bound to their nonce and its TLS
certificate, and credential activation for its AK.
--attestation-variant (or "attestation": {"variant", "snp"}) azure-sev-snp, aws-sev-snp or
gcp-sev-snp requires each node's AMD SEV-SNP report in round 2, chained to a pinned AMD root
and binding its AK (docs/attestation-variants.md); the default qemu-vtpm does not.`,
  options: {
    config: { type: 'string', valueName: 'FILE', description: 'JSON configuration (flags win)' },
    listen: { type: 'string', valueName: 'IP:PORT', description: 'address to listen on (default 127.0.0.1:8443)' },
    'state-dir': { type: 'string', valueName: 'DIR', description: 'master secret, salt, TLS key, audit log' },
    measurements: { type: 'string', valueName: 'FILE', description: 'signed measurements file (reloaded when it changes)' },
    'measurements-sig': { type: 'string', valueName: 'FILE', description: 'its signature (default FILE.sig)' },
    'measurements-key': { type: 'string', valueName: 'PUB.pem', description: 'public key the measurements are signed with' },
    'previous-measurements': { type: 'string', valueName: 'FILE', description: 'older signed measurements still accepted (rollout)' },
    'ek-ca': { type: 'string', multiple: true, valueName: 'CA.pem', description: 'trusted EK certificate CA' },
    'ek-ca-store': { type: 'string', multiple: true, valueName: 'NAME', description: 'a pinned EK CA store: tpm-vendors (TPM makers), gcp-vtpm (docs/tpm.md)' },
    'ek-ca-store-dir': { type: 'string', multiple: true, valueName: 'DIR', description: "where the store's certificates are (default: the store's, e.g. Debian's ruby-tpm-key-attestation)" },
    'audit-log': { type: 'string', valueName: 'FILE', description: 'audit log (default STATE/audit.log)' },
    'admin-socket': { type: 'string', valueName: 'PATH', description: 'admin socket for `keyservice measurements` (default: one per state dir under TMPDIR, docs/rollout.md)' },
    'tls-cert': { type: 'string', valueName: 'PEM', description: 'use this TLS certificate instead of the generated one' },
    'tls-key': { type: 'string', valueName: 'PEM', description: 'its key' },
    'require-event-log': { type: 'boolean', description: 'refuse attestations without a firmware event log' },
    'nonce-ttl': { type: 'string', valueName: 'SECONDS', description: 'nonce lifetime (default 60)' },
    'confirm-ttl': { type: 'string', valueName: 'SECONDS', description: 'how long after a release its PCR 15 lock may be confirmed (default 900)' },
    'max-request-bytes': { type: 'string', valueName: 'N', description: 'request body limit (default 524288)' },
    'node-inventory': { type: 'string', valueName: 'FILE', description: 'JSON {"<sha256 of EK cert>": "node-name"}: each TPM may only ask for its own node name' },
    'token-command': { type: 'string', valueName: 'CMD', description: 'registers each bootstrap token with the cluster (JSON on stdin, token id as argument); needs a join configuration' },
    'attestation-variant': { type: 'string', valueName: 'VARIANT', description: 'how node AKs are trusted: qemu-vtpm (default), azure-sev-snp, aws-sev-snp, gcp-sev-snp (docs/attestation-variants.md)' },
    'tpm-tcti': { type: 'string', valueName: 'TCTI', description: "this machine's TPM: quote it for agents that check the key service (mutual attestation; off by default)" },
    store: { type: 'string', valueName: 'KIND', choices: ['local', 'etcd'], description: 'where sessions, nonces, bindings and the audit log live: local (default, the state dir) or etcd (replicas; docs/ha.md)' },
    ...ETCD_OPTIONS,
  },
  async run(ctx) {
    const file = str(ctx.values, 'config');
    const fromFile = file ? await readConfigFile(file) : {};
    const flags = flagConfig(ctx.values);
    const tcti = str(ctx.values, 'tpm-tcti');
    if (tcti) flags.attestation = { ...fromFile.attestation, tcti };
    const variant = str(ctx.values, 'attestation-variant');
    if (variant) flags.attestation = { ...fromFile.attestation, ...flags.attestation, variant: variant as never };
    const tokenCommand = str(ctx.values, 'token-command');
    if (tokenCommand) {
      if (!fromFile.join) fail('USAGE', '--token-command needs a join configuration (join: {...} in --config)');
      fromFile.join = { ...fromFile.join, tokenCommand };
    }
    const cfg = resolveConfig(fromFile, flags);
    const svc = await startKeyService(cfg, {
      log: ctx.log,
      // The TPM engine (koffi -> libtss2) is loaded only when the service attests itself.
      openServiceTpm: async (t, log) => (await import('../../attestation/tpm/engine-tpm.js')).EngineAttestationTpm.open(t, log),
    });
    const started = { ok: true, listening: svc.url, fingerprint: svc.fingerprint, clusterId: svc.clusterId, created: svc.created, adminSocket: svc.adminSocket, variant: svc.variant, ...(svc.testOnlyRoot && { testOnlyRoot: svc.testOnlyRoot }) };
    process.stdout.write(ctx.json ? JSON.stringify(started) + '\n' : svc.fingerprint + '\n');
    ctx.log(`key service listening on ${svc.url} (cluster ${svc.clusterId}, variant ${svc.variant}); audit log ${svc.auditLog}`);
    if (svc.testOnlyRoot) ctx.log(`WARNING: a TEST-ONLY AMD root is trusted (sha256 ${svc.testOnlyRoot}): never in production`);
    await new Promise<void>((resolve) => (ctx.signal.aborted ? resolve() : ctx.signal.addEventListener('abort', () => resolve(), { once: true })));
    await svc.close();
    ctx.log('key service stopped');
    return { ok: true, stopped: true, url: svc.url, fingerprint: svc.fingerprint };
  },
  render: () => '',
};

// ---- sextant keyservice audit verify ----

interface AuditVerifyOutput {
  ok: true;
  file: string;
  records: number;
  lastRecordSha256: string;
  headChecked: boolean;
  recordsBeyondHead: number;
  tornTailBytes: number;
  tailCuts: number;
  evidenceBlobs: number;
}

/** The etcd store's audit chain as log bytes and head (the etcd client is loaded only here). */
async function readStoreAudit(v: Record<string, unknown>) {
  const etcd = etcdFlags(v);
  if (!etcd) fail('USAGE', '--store etcd needs --etcd-endpoints URL[,URL...]');
  const { connectEtcd } = await import('../../keyservice/store/etcd/client.js');
  const { readEtcdAuditLog } = await import('../../keyservice/store/etcd/audit-read.js');
  const { client, ns } = await connectEtcd(etcd);
  try {
    return { where: `etcd ${etcd.endpoints.join(',')} ${etcd.prefix ?? 'sextant/'}audit/`, ...(await readEtcdAuditLog(ns)) };
  } finally {
    client.close();
  }
}

const auditVerify: CommandSpec<AuditVerifyOutput> = {
  path: ['keyservice', 'audit', 'verify'],
  summary: 'check a key service audit log: hash chain, head file, evidence blobs (edited, dropped or reordered records)',
  description: `
Exit 0 when every complete record chains to the one before it, the head file's record is
there with its hash (records after it are valid: the head is a lower bound), and every
evidence reference names an earlier evidence record whose content hashes to it. A torn final
record (a write that never completed, left by a crash) does not fail the check: it is
reported as tornTailBytes and the service cuts it off, audited, when it next opens the log.
Exit 1 with AUDIT_LOG_BROKEN otherwise. For an outside anchor, keep lastRecordSha256.
With --store etcd (and --etcd-endpoints) instead of FILE: the replicas' one chain in etcd,
read at one revision (an export of it, \`keyservice audit export\`, checks the same as FILE).`,
  args: '[FILE]',
  options: {
    head: { type: 'string', valueName: 'FILE', description: 'head file to check the log against (default: FILE.head when present)' },
    store: { type: 'string', valueName: 'KIND', choices: ['local', 'etcd'], description: 'etcd: check the chain in etcd instead of FILE' },
    ...ETCD_OPTIONS,
  },
  async run(ctx) {
    const file = ctx.positionals[0];
    const fromStore = str(ctx.values, 'store') === 'etcd';
    if (fromStore === (file !== undefined)) fail('USAGE', 'give either FILE or --store etcd --etcd-endpoints URL[,URL...]');
    let where = file;
    let r;
    if (fromStore) {
      const a = await readStoreAudit(ctx.values);
      where = a.where;
      r = verifyAuditBytes(a.bytes, a.head);
    } else {
      r = await verifyAuditLog(file!, { headFile: str(ctx.values, 'head') });
    }
    return {
      ok: true,
      file: where!,
      records: r.count,
      lastRecordSha256: r.last,
      headChecked: r.headChecked,
      recordsBeyondHead: r.beyondHead,
      tornTailBytes: r.tornBytes,
      tailCuts: r.tailCuts,
      evidenceBlobs: r.evidenceBlobs,
    };
  },
  render: (r) =>
    `${r.file}: ${r.records} records, chain intact, ${r.evidenceBlobs} evidence blobs match` +
    (r.headChecked ? `, head file matches (${r.recordsBeyondHead} records after it)` : ' (no head file: the last record is not covered)') +
    (r.tornTailBytes ? `; a torn final record of ${r.tornTailBytes} bytes (cut on the service's next start)` : '') +
    (r.tailCuts ? `; ${r.tailCuts} torn tails cut so far` : ''),
};

// ---- sextant keyservice audit export ----

interface AuditExportOutput {
  ok: true;
  file: string;
  records: number;
  lastRecordSha256: string;
  etcdRevision: string;
}

const auditExport: CommandSpec<AuditExportOutput> = {
  path: ['keyservice', 'audit', 'export'],
  summary: 'write the replicas\' audit chain from etcd to a log file and its head file (checked first)',
  description: `
Reads the chain at one etcd revision, checks it like \`audit verify\`, and writes OUT (one
record per line, the file log's format) and OUT.head, both 0600. \`sextant keyservice audit
verify OUT\` then checks the copy anywhere, without etcd.`,
  args: 'OUT',
  options: { store: { type: 'string', valueName: 'KIND', choices: ['etcd'], description: 'etcd (the only store with replicas to export)' }, ...ETCD_OPTIONS },
  async run(ctx) {
    const out = ctx.positionals[0];
    const a = await readStoreAudit(ctx.values);
    const r = verifyAuditBytes(a.bytes, a.head);
    await writeFile(out, a.bytes, { mode: 0o600, flag: 'wx' }).catch((cause: unknown) => fail('IO_FAILED', `cannot create ${out} (it must not exist)`, cause));
    await writeFile(headPath(out), JSON.stringify({ count: r.count, last: r.last }) + '\n', { mode: 0o600 });
    return { ok: true, file: out, records: r.count, lastRecordSha256: r.last, etcdRevision: a.revision };
  },
  render: (r) => `${r.file}: ${r.records} records exported (etcd revision ${r.etcdRevision}), last record sha256 ${r.lastRecordSha256}`,
};

export const keyserviceCommands: CommandSpec<any>[] = [serve, auditVerify, auditExport, ...keyserviceDiskCommands, ...keyserviceMeasurementsCommands];
