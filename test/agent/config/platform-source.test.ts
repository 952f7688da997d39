/**
 * The cloud configuration sources against a stand-in metadata server on 127.0.0.1 that
 * answers only requests carrying each cloud's documented headers (no real metadata service
 * is reachable here): Azure IMDS user data (base64), AWS IMDSv2 (token, then user data), GCP
 * metadata attributes (Metadata-Flavor both ways).
 */
import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../../agent/config/config.js';
import { platformSource } from '../../../agent/config/platform-source.js';
import { tempDir } from '../disk/images.js';

const CONFIG = { keyservice: { url: ['https://10.0.0.2:8443', 'https://10.0.0.3:8443'], fingerprint: 'sha256:' + 'ab'.repeat(32) }, node: { name: 'cloud-node' }, attestation: { variant: 'aws-sev-snp', vcek: '/etc/sextant/vlek.der' } };

/** Serves `userData` as each cloud documents it; refuses (400/401/403) a request without the cloud's headers. */
async function standIn(userData: string | undefined, o: { gcpFlavorBack?: boolean } = {}): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const token = 'AQAEAFake-token==';
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const u = new URL(req.url!, 'http://x');
    if (req.method === 'GET' && u.pathname === '/metadata/instance/compute/userData') {
      if (req.headers.metadata !== 'true' || !u.searchParams.get('api-version')) return void res.writeHead(400).end('{"error":"Bad request. Required metadata header not specified"}');
      return void res.writeHead(200, { 'content-type': 'text/plain' }).end(userData === undefined ? '' : Buffer.from(userData).toString('base64'));
    }
    if (req.method === 'PUT' && u.pathname === '/latest/api/token') {
      if (!req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return void res.writeHead(400).end();
      return void res.writeHead(200).end(token);
    }
    if (req.method === 'GET' && u.pathname === '/latest/user-data') {
      if (req.headers['x-aws-ec2-metadata-token'] !== token) return void res.writeHead(401).end();
      return void (userData === undefined ? res.writeHead(404).end() : res.writeHead(200).end(userData));
    }
    if (req.method === 'GET' && u.pathname === '/computeMetadata/v1/instance/attributes/sextant-agent-config') {
      if (req.headers['metadata-flavor'] !== 'Google') return void res.writeHead(403).end('Missing Metadata-Flavor:Google header.');
      const h = o.gcpFlavorBack === false ? {} : { 'Metadata-Flavor': 'Google' };
      return void (userData === undefined ? res.writeHead(404, h).end() : res.writeHead(200, h).end(userData));
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => new Promise((r) => server.close(() => r())) };
}

for (const platform of ['azure', 'aws', 'gcp'] as const) {
  test(`${platform}: the configuration comes from the metadata service in its documented shape`, async (t) => {
    const s = await standIn(JSON.stringify(CONFIG));
    t.teardown(s.close);
    const d = await tempDir();
    t.teardown(d.cleanup);
    const { config, sources } = await loadConfig({ file: `${d.dir}/none.json`, cmdlinePath: `${d.dir}/no-cmdline`, platform, metadataUrl: s.url });
    t.like(config, { platform, node: { name: 'cloud-node' }, keyservice: { urls: CONFIG.keyservice.url }, attestation: { variant: 'aws-sev-snp' } });
    t.true(sources[0].startsWith(s.url), sources[0]);
    t.log(s.seen.join(', '));
  });
}

test('the stand-in refuses requests without the documented headers (so the sources above sent them)', async (t) => {
  const s = await standIn('{}');
  t.teardown(s.close);
  for (const [method, p] of [['GET', '/metadata/instance/compute/userData?api-version=2021-01-01&format=text'], ['PUT', '/latest/api/token'], ['GET', '/latest/user-data'], ['GET', '/computeMetadata/v1/instance/attributes/sextant-agent-config?alt=text']]) {
    const r = await fetch(s.url + p, { method });
    t.true(r.status >= 400 && r.status < 404, `${method} ${p}: ${r.status}`);
  }
});

test('no user data: FILE_NOT_FOUND naming the metadata URL; an answer without Metadata-Flavor, bad base64 or JSON: typed errors', async (t) => {
  const d = await tempDir();
  t.teardown(d.cleanup);
  const none = await standIn(undefined);
  t.teardown(none.close);
  for (const platform of ['azure', 'aws', 'gcp'] as const) {
    await t.throwsAsync(loadConfig({ file: `${d.dir}/none.json`, cmdlinePath: `${d.dir}/x`, platform, metadataUrl: none.url }), { code: 'FILE_NOT_FOUND', message: new RegExp(none.url) });
  }
  const noFlavor = await standIn('{}', { gcpFlavorBack: false });
  t.teardown(noFlavor.close);
  await t.throwsAsync(platformSource('gcp', { metadataUrl: noFlavor.url })!.read(), { code: 'CONFIG_SOURCE_UNAVAILABLE' });
  const notJson = await standIn('not json');
  t.teardown(notJson.close);
  await t.throwsAsync(platformSource('aws', { metadataUrl: notJson.url })!.read(), { code: 'CONFIG_INVALID' });
  await t.throwsAsync(platformSource('azure', { metadataUrl: 'http://127.0.0.1:1' })!.read(), { code: 'CONFIG_SOURCE_UNAVAILABLE' });
});

test('attestation.variant takes the names of attestation/variant.ts; an SNP variant needs its VCEK/VLEK file', async (t) => {
  const d = await tempDir();
  t.teardown(d.cleanup);
  const s = await standIn(JSON.stringify({ ...CONFIG, attestation: { variant: 'azure-tdx' } }));
  t.teardown(s.close);
  await t.throwsAsync(loadConfig({ file: `${d.dir}/none.json`, cmdlinePath: `${d.dir}/x`, platform: 'aws', metadataUrl: s.url }), { code: 'CONFIG_INVALID', message: /attestation\.variant/ });
  const s2 = await standIn(JSON.stringify({ ...CONFIG, attestation: { variant: 'gcp-sev-snp' } }));
  t.teardown(s2.close);
  await t.throwsAsync(loadConfig({ file: `${d.dir}/none.json`, cmdlinePath: `${d.dir}/x`, platform: 'gcp', metadataUrl: s2.url }), { code: 'CONFIG_INVALID', message: /attestation\.vcek/ });
});

test('a metadata service that trickles its answer a byte at a time is cut off after 3 s in all: CONFIG_SOURCE_UNAVAILABLE', async (t) => {
  const ticks = new Set<NodeJS.Timeout>();
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Metadata-Flavor': 'Google' });
    res.write('{');
    ticks.add(setInterval(() => res.write(' '), 100));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const x of ticks) clearInterval(x);
    server.closeAllConnections();
    server.close();
  });
  const started = Date.now();
  const e = await t.throwsAsync(platformSource('gcp', { metadataUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })!.read());
  t.is((e as { code?: string }).code, 'CONFIG_SOURCE_UNAVAILABLE');
  t.true(Date.now() - started < 6000, `${Date.now() - started} ms`);
});
