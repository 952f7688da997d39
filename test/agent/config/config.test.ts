import test from 'ava';
import fc from 'fast-check';
import { isSextantError } from '../../../lib/errors.js';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cmdlineOverrides, loadConfig, resolveConfig } from '../../../agent/config/config.js';
import { tempDir } from '../disk/images.js';

const FILE = { keyservice: { url: 'https://10.0.0.2:8443', fingerprint: 'sha256:' + 'ab'.repeat(32) } };

test('defaults fill what the file leaves out', (t) => {
  const c = resolveConfig(FILE, '');
  t.like(c, { node: { role: 'worker' }, stateDisk: { partLabel: 'sextant-state', mountpoint: '/var/lib/sextant-state' }, recovery: { enabled: false } });
});

test('kernel command-line sextant.* keys override the file; other words are ignored', (t) => {
  const c = resolveConfig(FILE, 'BOOT_IMAGE=/vmlinuz ro quiet sextant.keyservice=https://ks.example:9000 sextant.role=control-plane sextant.recovery sextant.recovery.port=7443 sextant.disk.label=state2');
  t.deepEqual(c.keyservice.urls, ['https://ks.example:9000']);
  t.is(c.keyservice.fingerprint, FILE.keyservice.fingerprint);
  t.is(c.node.role, 'control-plane');
  t.true(c.recovery.enabled);
  t.is(c.recovery.port, 7443);
  t.is(c.stateDisk.partLabel, 'state2');
});

test('an unknown sextant.* key is CONFIG_INVALID (a typo must not be ignored)', (t) => {
  t.throws(() => cmdlineOverrides('sextant.keyservce=https://x'), { code: 'CONFIG_INVALID' });
});

test('every invalid field is named in one error', (t) => {
  const e = t.throws(() =>
    resolveConfig({ keyservice: { url: 'http://plain', fingerprint: 'md5:x' }, node: { role: 'boss' }, join: { attempts: 0 } }, 'sextant.recovery.port=99999'),
  );
  t.is((e as { code?: string }).code, 'CONFIG_INVALID');
  for (const f of ['keyservice.url', 'keyservice.fingerprint', 'node.role', 'join.attempts', 'recovery.port']) t.true(e!.message.includes(f), f);
});

test('a bind mount may not escape the state disk', (t) => {
  t.throws(() => resolveConfig({ ...FILE, stateDisk: { bindMounts: [{ source: '../etc', target: '/etc' }] } }, ''), { code: 'CONFIG_INVALID' });
});

test('fuzz: any JSON and command line gives a config or CONFIG_INVALID, nothing else', (t) => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.array(fc.constantFrom('sextant.role=', 'sextant.recovery.port=', 'sextant.keyservice=', 'quiet', 'sextant.recovery=')).chain((ks) => fc.tuple(fc.constant(ks), fc.array(fc.string(), { minLength: ks.length, maxLength: ks.length }))), (file, [keys, vals]) => {
      const cmdline = keys.map((k, i) => k + vals[i].replace(/\s/g, '')).join(' ');
      try {
        resolveConfig(file, cmdline);
        return true;
      } catch (e) {
        return isSextantError(e, 'CONFIG_INVALID');
      }
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('recovery bind address: 0.0.0.0 by default, sextant.recovery.address overrides, a non-address is refused', (t) => {
  t.is(resolveConfig(FILE, '').recovery.address, '0.0.0.0');
  t.is(resolveConfig(FILE, 'sextant.recovery.address=127.0.0.1').recovery.address, '127.0.0.1');
  const e = t.throws(() => resolveConfig(FILE, 'sextant.recovery.address=node.example'));
  t.is((e as { code?: string }).code, 'CONFIG_INVALID');
  t.true(e!.message.includes('recovery.address'));
});

test('who may recover the node comes from measured sources only: the credential cannot add an admin key, and its key service fingerprint is not trusted for recovery', (t) => {
  const pin = 'sha256:' + 'cd'.repeat(32);
  const fileFp = 'sha256:' + 'AB:'.repeat(31) + 'AB';
  const file = { ...FILE, keyservice: { ...FILE.keyservice, fingerprint: fileFp }, recovery: { enabled: true, adminKeys: [pin] } };
  const c = resolveConfig(file, '', { keyservice: { fingerprint: 'sha256:' + 'ef'.repeat(32) } });
  t.is(c.keyservice.fingerprint, 'sha256:' + 'ef'.repeat(32), 'the credential still picks the key service the agent talks to');
  t.is(c.recovery.keyserviceCertificate, 'sha256:' + 'ab'.repeat(32), 'recovery trusts the measured (file) fingerprint, normalized');
  t.deepEqual(c.recovery.adminKeys, [pin]);
  t.throws(() => resolveConfig(FILE, '', { recovery: { adminKeys: [pin] } }), { code: 'CONFIG_INVALID', message: /measured source/ });
  t.throws(() => resolveConfig({ ...FILE, recovery: { keyserviceCertificate: pin } }, ''), { code: 'CONFIG_INVALID' });
  // Only the credential names a key service, and no admin key: nobody could recover, so refuse to start.
  const { keyservice: _ks, ...noKs } = FILE;
  t.throws(() => resolveConfig(noKs, 'sextant.recovery', { keyservice: FILE.keyservice }), { code: 'CONFIG_INVALID', message: /no measured identity/ });
  t.deepEqual(resolveConfig(noKs, `sextant.recovery sextant.recovery.admin-keys=${pin},sha256:${'01'.repeat(32)}`, { keyservice: FILE.keyservice }).recovery.adminKeys, [pin, 'sha256:' + '01'.repeat(32)]);
  t.throws(() => resolveConfig(file, 'sextant.recovery.admin-keys=sha256:xyz'), { code: 'CONFIG_INVALID', message: /adminKeys/ });
});

test('sources: defaults <- file <- credential sextant.agent.json <- kernel command line', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const file = path.join(dir, 'agent.json');
  const creds = path.join(dir, 'creds');
  const cmdline = path.join(dir, 'cmdline');
  await mkdir(creds);
  await writeFile(file, JSON.stringify({ ...FILE, node: { name: 'from-file', role: 'control-plane' } }));
  await writeFile(path.join(creds, 'sextant.agent.json'), JSON.stringify({ keyservice: { url: 'https://10.0.2.2:8443', fingerprint: FILE.keyservice.fingerprint }, node: { name: 'from-credential' }, retry: { maxMs: 5000 } }));
  await writeFile(cmdline, 'ro sextant.node.name=from-cmdline\n');
  const { config, sources } = await loadConfig({ file, credentialsDirectory: creds, cmdlinePath: cmdline });
  t.is(config.node.name, 'from-cmdline');
  t.is(config.node.role, 'control-plane', 'the file still counts where the credential says nothing');
  t.is(config.retry.maxMs, 5000);
  t.is(config.retry.initialMs, 1000, 'defaults fill the rest');
  t.deepEqual(sources, [file, path.join(creds, 'sextant.agent.json'), cmdline]);
  // Only the credential (the e2e VM: SMBIOS type 11), no file.
  const only = await loadConfig({ file: path.join(dir, 'missing.json'), credentialsDirectory: creds, cmdlinePath: path.join(dir, 'none') });
  t.is(only.config.node.name, 'from-credential');
  t.deepEqual(only.config.keyservice.urls, ['https://10.0.2.2:8443']);
  t.deepEqual(only.sources, [path.join(creds, 'sextant.agent.json')]);
});

test('neither file nor credential: FILE_NOT_FOUND naming both; a broken file: CONFIG_INVALID', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const e = await t.throwsAsync(loadConfig({ file: path.join(dir, 'agent.json'), credentialsDirectory: path.join(dir, 'creds'), cmdlinePath: path.join(dir, 'x') }), { code: 'FILE_NOT_FOUND' });
  t.regex(e!.message, /agent\.json does not exist and .*sextant\.agent\.json has none/);
  await writeFile(path.join(dir, 'agent.json'), '{ not json');
  await t.throwsAsync(loadConfig({ file: path.join(dir, 'agent.json'), cmdlinePath: path.join(dir, 'x') }), { code: 'CONFIG_INVALID' });
  await writeFile(path.join(dir, 'agent.json'), '[1]');
  await t.throwsAsync(loadConfig({ file: path.join(dir, 'agent.json'), cmdlinePath: path.join(dir, 'x') }), { code: 'CONFIG_INVALID' });
});

test('keyservice.url: the old single string and a list of replicas are one list; the kernel command line takes a comma list; --keyservice replaces them', (t) => {
  t.deepEqual(resolveConfig(FILE, '').keyservice.urls, ['https://10.0.0.2:8443']);
  const two = { keyservice: { ...FILE.keyservice, url: ['https://10.0.0.2:8443', 'https://10.0.0.3:8443'] } };
  t.deepEqual(resolveConfig(two, '').keyservice.urls, ['https://10.0.0.2:8443', 'https://10.0.0.3:8443']);
  t.deepEqual(resolveConfig(FILE, 'sextant.keyservice=https://a.example:1,https://b.example:2').keyservice.urls, ['https://a.example:1', 'https://b.example:2']);
  t.deepEqual(resolveConfig(two, '', undefined, ['https://127.0.0.1:9']).keyservice.urls, ['https://127.0.0.1:9']);
  for (const url of [[], ['https://10.0.0.2:8443', 'http://10.0.0.3:8443'], ['https://10.0.0.2:8443', 'https://10.0.0.2:8443'], Array.from({ length: 17 }, (_, i) => `https://10.0.0.${i}:1`), 42]) {
    t.throws(() => resolveConfig({ keyservice: { ...FILE.keyservice, url } }, ''), { code: 'CONFIG_INVALID', message: /keyservice\.url/ }, JSON.stringify(url));
  }
});
