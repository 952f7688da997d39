/**
 * Issue 11's fuzz proof for the node's recovery endpoint over real HTTPS: generated hostile
 * bodies into each of its routes, from a pinned admin identity (the bodies reach the schemas)
 * and from an unpinned client (refused before the body is read) (agent/recovery/server.ts, the real server with a real
 * swtpm behind it). Every answer a typed 4xx, and afterwards the endpoint still answers a
 * good evidence request with the swtpm's EK certificate.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import { certFingerprint } from '../../keyservice/state-dir.js';
import { startSwtpm } from '../helpers/swtpm.js';
import { Tpm2ToolsAttester } from '../helpers/tpm2-tools-attester.js';
import { campaign, summary } from '../helpers/fuzz-campaign.js';
import { recoveryAccepts } from '../helpers/fuzz-targets.js';
import { RECOVERY_SAMPLES } from '../helpers/protocol-samples.js';
import { RawHttps } from '../helpers/raw-https.js';
import { startRecoveryServer } from '../../agent/recovery/server.js';
import { RECOVERY_ROUTES } from '../../protocol/recovery-messages.js';
import type { AttestationTpm } from '../../attestation/tpm/tpm.js';

const RUNS = 400;

test('3 recovery routes x 400 hostile bodies over HTTPS from a pinned admin, 100 from an unpinned client: typed 4xx only; the endpoint still answers a good request', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'recovery-fuzz-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const swtpm = await startSwtpm();
  t.teardown(() => swtpm.stop());
  const ta = await Tpm2ToolsAttester.create(swtpm.tcti);
  t.teardown(() => ta.dispose());
  // The identity is read from the swtpm once: a body that passes the evidence schema costs no TPM round trip here.
  const ekCert = await ta.ekCertificate();
  const akPublic = await ta.akPublic();
  const tpm: AttestationTpm = { ekCertificate: async () => ekCert, akPublic: async () => akPublic, activateCredential: (b, s) => ta.activateCredential(b, s), quote: (q) => ta.quote(q), dispose: async () => undefined };
  // The hostile party holds a pinned admin identity (so its bodies reach the schemas); an unpinned one is refused first.
  const admin = { keyPem: '', certPem: '' };
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'a.key'), '-out', path.join(dir, 'a.crt'), '-subj', '/CN=fuzzing admin', '-days', '1']);
  admin.keyPem = await readFile(path.join(dir, 'a.key'), 'utf8');
  admin.certPem = await readFile(path.join(dir, 'a.crt'), 'utf8');
  const server = await startRecoveryServer({
    tpm,
    trust: { certificates: [certFingerprint(admin.certPem)], publicKeys: [] },
    proveKey: async () => false,
    diskUuid: '7d444840-9dc0-11d1-b245-5ffdce74fad2',
    host: '127.0.0.1',
    port: 0,
    rateLimit: { burst: 100_000, perSecond: 100_000 },
    maxSessions: 100_000,
  });
  t.teardown(() => server.close());
  const base = `https://127.0.0.1:${server.port}`;
  const http = new RawHttps(base, admin);
  const stranger = new RawHttps(base);
  t.teardown(() => (http.close(), stranger.close()));
  for (const [client, runs, pinned] of [[http, RUNS, true], [stranger, 100, false]] as const) {
    for (const [route, sample] of Object.entries(RECOVERY_SAMPLES)) {
      const r = await campaign(
        {
          route,
          sample,
          send: async (body) => {
            const a = await client.post(route, body);
            return { status: a.status, body: a.json };
          },
          // A well-formed evidence request from the pinned admin is answered (a session for its nonce); nothing else may be.
          mayAccept: (body) => pinned && route === RECOVERY_ROUTES.evidence && recoveryAccepts(route, body),
        },
        runs,
        { maxString: 80 * 1024 },
      );
      t.log(`${pinned ? 'pinned' : 'unpinned'} ${summary(r)}`);
      if (!pinned) t.deepEqual(Object.keys(r.codes), ['RECOVERY_UNAUTHORIZED']);
    }
  }
  const good = await http.post(RECOVERY_ROUTES.evidence, JSON.stringify({ v: 1, nonce: randomBytes(32).toString('base64') }));
  t.is(good.status, 200);
  t.is((good.json as { ekCert?: string }).ekCert, Buffer.from(ekCert).toString('base64'));
});
