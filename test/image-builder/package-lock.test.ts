import test from 'ava';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { diffLocks, lockFromManifest, parsePackageLock, pinnedPackageSpecs } from '../../image-builder/package-lock.js';
import { stageComponents } from '../../image-builder/components.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

test('the lock pins every manifest package by version and .deb hash, epochs included', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lock-'));
  const cache = path.join(dir, 'cache/debian~trixie/apt/archives');
  await mkdir(cache, { recursive: true });
  await writeFile(path.join(cache, 'bsdutils_1%3a2.41-1_amd64.deb'), 'deb-a');
  await writeFile(path.join(cache, 'adduser_3.152_all.deb'), 'deb-b');
  const manifest = path.join(dir, 'm.json');
  await writeFile(
    manifest,
    JSON.stringify({
      config: { distribution: 'debian', release: 'trixie' },
      packages: [
        { name: 'bsdutils', version: '1:2.41-1', architecture: 'amd64' },
        { name: 'adduser', version: '3.152', architecture: 'all' },
      ],
    }),
  );
  const lock = await lockFromManifest(manifest, path.join(dir, 'cache'));
  t.deepEqual(lock.packages, [
    { name: 'adduser', version: '3.152', architecture: 'all', sha256: sha('deb-b') },
    { name: 'bsdutils', version: '1:2.41-1', architecture: 'amd64', sha256: sha('deb-a') },
  ]);
  t.deepEqual(pinnedPackageSpecs(lock), ['adduser=3.152', 'bsdutils=1:2.41-1']);
  t.deepEqual(parsePackageLock(JSON.stringify(lock), 'x'), lock);

  const changed = structuredClone(lock);
  changed.packages[1].version = '1:2.41-2';
  changed.packages.push({ name: 'zz', version: '1', architecture: 'all', sha256: sha('z') });
  t.deepEqual(
    diffLocks(lock, changed).map((d) => d.name),
    ['bsdutils', 'zz'],
  );
  await t.throwsAsync(lockFromManifest(manifest, path.join(dir, 'empty')), { code: 'BUILD_FAILED' });
});

test('a malformed lock is CONFIG_INVALID naming the field', (t) => {
  const e = t.throws(() => parsePackageLock('{"lockVersion":1,"packages":[{"name":"a","version":"1","architecture":"all","sha256":"xyz"}]}', 'lock.json'), {
    code: 'CONFIG_INVALID',
  });
  t.regex(e!.message, /packages\[0\]\.sha256/);
});

test('a Kubernetes component whose hash differs is refused; an absent one is recorded, not faked', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'comp-'));
  const file = path.join(dir, 'kubeadm');
  await writeFile(file, 'kubeadm binary');
  const tree = path.join(dir, 'tree');
  const ok = await stageComponents([{ name: 'kubeadm', sha256: sha('kubeadm binary'), path: file, installPath: '/usr/bin/kubeadm' }], tree);
  t.true(ok[0].included);
  await t.throwsAsync(
    stageComponents([{ name: 'kubeadm', sha256: sha('other'), path: file, installPath: '/usr/bin/kubeadm' }], tree),
    { code: 'COMPONENT_HASH_MISMATCH' },
  );
  const absent = await stageComponents([{ name: 'kubelet', sha256: sha('k'), url: 'https://dl.k8s.io/kubelet', installPath: '/usr/bin/kubelet' }], tree);
  t.false(absent[0].included);
  t.regex(absent[0].note!, /not available/);
});
