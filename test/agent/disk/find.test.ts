import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES } from '../../helpers/paths.js';
import { parseLsblk, selectStateDisk, readBlockInventory } from '../../../agent/disk/find.js';
import { run } from '../../../lib/exec.js';

const node = parseLsblk(readFileSync(path.join(FIXTURES, 'agent/lsblk-node.json'), 'utf8'));
const host = parseLsblk(readFileSync(path.join(FIXTURES, 'agent/lsblk-build-host.json'), 'utf8'));
const LINUX_DATA = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

test('the state partition is found by GPT label, not by device name', (t) => {
  t.is(selectStateDisk(node, {}).path, '/dev/vdb1');
  t.is(selectStateDisk(node, { partLabel: 'sextant-state', partType: LINUX_DATA }).path, '/dev/vdb1');
});

test('label and type must both match when both are configured', (t) => {
  t.throws(() => selectStateDisk(node, { partType: 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b' }), { code: 'DISK_NOT_FOUND' });
});

test('a whole disk or a filesystem never qualifies; none found is DISK_NOT_FOUND', (t) => {
  t.throws(() => selectStateDisk(host, {}), { code: 'DISK_NOT_FOUND' });
  const relabelled = node.map((r) => (r.name === 'vdc' ? { ...r, partlabel: 'sextant-state' } : r));
  t.is(selectStateDisk(relabelled, {}).path, '/dev/vdb1'); // vdc is a disk, not a partition
});

test('two matching partitions: refuse to pick (DISK_AMBIGUOUS)', (t) => {
  const twice = [...node, { ...node.find((r) => r.name === 'vdb1')!, name: 'vdd1', path: '/dev/vdd1', pkname: 'vdd' }];
  t.throws(() => selectStateDisk(twice, {}), { code: 'DISK_AMBIGUOUS' });
});

test('a read-only match is refused', (t) => {
  const ro = node.map((r) => (r.name === 'vdb1' ? { ...r, ro: true } : r));
  t.throws(() => selectStateDisk(ro, {}), { code: 'DISK_STEP_FAILED' });
});

test('the real lsblk on this machine parses into rows', async (t) => {
  const rows = await readBlockInventory(run);
  t.true(rows.length > 0);
  for (const r of rows) t.true(r.path.startsWith('/dev/'));
});
