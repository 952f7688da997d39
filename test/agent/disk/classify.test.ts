import test from 'ava';
import fc from 'fast-check';
import { isSextantError } from '../../../lib/errors.js';
import { classifyDisk } from '../../../agent/disk/classify.js';
import { filesystemAction } from '../../../agent/disk/filesystem.js';
import { headerViolations } from '../../../agent/disk/header-policy.js';
import type { DiskFacts } from '../../../agent/disk/inspect.js';
import { parseLuks2Metadata } from '../../../agent/disk/luks2-metadata.js';
import { parseBlkidExport } from '../../../agent/disk/blkid.js';

// A header as cryptsetup 2.6 dumps it after sextant's luksFormat + token import (captured).
const OURS = {
  keyslots: {
    '0': {
      type: 'luks2', key_size: 64, af: { type: 'luks1', stripes: 4000, hash: 'sha256' },
      area: { type: 'raw', offset: '32768', size: '258048', encryption: 'aes-xts-plain64', key_size: 64 },
      kdf: { type: 'pbkdf2', hash: 'sha256', iterations: 1000, salt: 'sS+PRoJKE5+QFVqSgKB1ZzhhJxbE2RZucWWl6toqTbE=' },
    },
  },
  tokens: { '0': { type: 'sextant', keyslots: [], version: 1, filesystem: 'pending' } },
  segments: { '0': { type: 'crypt', offset: '16777216', size: 'dynamic', iv_tweak: '0', encryption: 'aes-xts-plain64', sector_size: 4096 } },
  digests: { '0': { type: 'pbkdf2', keyslots: ['0'], segments: ['0'], hash: 'sha256', iterations: 1000, salt: 'x', digest: 'y' } },
  config: { json_size: '12288', keyslots_size: '16744448' },
};

const MiB = 1024 * 1024;
function facts(over: Partial<DiskFacts> & { meta?: unknown } = {}): DiskFacts {
  const meta = (over.meta ?? OURS) as object;
  const raw = JSON.stringify(meta);
  return {
    device: '/dev/x',
    size: 64 * MiB,
    signature: { TYPE: 'crypto_LUKS', VERSION: '2', LABEL: 'sextant-state', UUID: 'u' },
    headZero: false,
    tailZero: true,
    luks2: { rawJson: raw, meta: parseLuks2Metadata(raw), dataHeadZero: true },
    ...over,
  };
}
const clone = (): typeof OURS & Record<string, any> => JSON.parse(JSON.stringify(OURS));

test('our header is accepted with its journalled filesystem state', (t) => {
  t.like(classifyDisk(facts()), { kind: 'ours', filesystem: 'pending', tokenId: '0' });
});

test('blank only when blkid finds nothing AND head and tail are zero', (t) => {
  const none = { signature: {}, luks2: undefined };
  t.is(classifyDisk(facts({ ...none, headZero: true, tailZero: true })).kind, 'blank');
  t.like(classifyDisk(facts({ ...none, headZero: false, tailZero: true })), { kind: 'refuse', code: 'DISK_FOREIGN_DATA' });
  t.like(classifyDisk(facts({ ...none, headZero: true, tailZero: false })), { kind: 'refuse', code: 'DISK_FOREIGN_DATA' });
  t.like(classifyDisk(facts({ ...none, headZero: true, tailZero: true, size: 8 * MiB })), { kind: 'refuse' });
  t.like(classifyDisk(facts({ signature: undefined, blkidError: 'ambivalent', luks2: undefined })), { kind: 'refuse', code: 'DISK_FOREIGN_DATA' });
});

test('each allow-list deviation in a tokened header is DISK_HEADER_REJECTED and named', (t) => {
  const cases: [string, (m: ReturnType<typeof clone>) => void, RegExp][] = [
    ['cipher_null segment', (m) => (m.segments['0'].encryption = 'cipher_null-ecb'), /cipher_null/],
    ['plain keyslot area', (m) => (m.keyslots['0'].area.encryption = 'cipher_null-ecb'), /keyslot 0: area cipher/],
    ['512 sectors', (m) => (m.segments['0'].sector_size = 512), /sector size 512/],
    ['cbc', (m) => (m.segments['0'].encryption = 'aes-cbc-essiv:sha256'), /cipher aes-cbc/],
    ['argon2 slot', (m) => (m.keyslots['0'].kdf = { type: 'argon2id', time: 4, memory: 32, cpus: 1 } as any), /pbkdf argon2id/],
    ['weak iterations', (m) => (m.keyslots['0'].kdf.iterations = 1), /iterations 1/],
    ['256-bit key', (m) => (m.keyslots['0'].key_size = 32), /key size 32/],
    ['reencrypt keyslot', (m) => ((m.keyslots as any)['1'] = { ...m.keyslots['0'], type: 'reencrypt' }), /keyslot 1: type reencrypt/],
    ['second segment', (m) => ((m.segments as any)['1'] = { ...m.segments['0'] }), /exactly 1 data segment/],
    ['integrity', (m) => ((m.segments['0'] as any).integrity = { type: 'hmac(sha256)' }), /integrity/],
    ['segment over header', (m) => (m.segments['0'].offset = '4096'), /overlaps the header/],
    ['requirements', (m) => ((m.config as any).requirements = { mandatory: ['online-reencrypt'] }), /requirements/],
    ['foreign token', (m) => ((m.tokens as any)['1'] = { type: 'systemd-tpm2', keyslots: ['0'] }), /unexpected type systemd-tpm2/],
    ['bad token state', (m) => ((m.tokens['0'] as any).filesystem = 'xfs'), /filesystem "xfs"/],
  ];
  for (const [name, edit, why] of cases) {
    const m = clone();
    edit(m);
    const v = classifyDisk(facts({ meta: m }));
    t.like(v, { kind: 'refuse', code: 'DISK_HEADER_REJECTED' }, name);
    t.regex((v as { found: string }).found, why, name);
  }
  t.like(classifyDisk(facts({ signature: { TYPE: 'crypto_LUKS', VERSION: '2', LABEL: 'other' } })), { kind: 'refuse', code: 'DISK_HEADER_REJECTED' });
});

test('no token: our exact shape is an unfinished format, anything else is foreign', (t) => {
  const m = clone();
  m.tokens = {} as any;
  t.like(classifyDisk(facts({ meta: m })), { kind: 'unfinished', keyslots: 1, dataUntouched: true });
  const noSlot = clone();
  noSlot.tokens = {} as any;
  noSlot.keyslots = {} as any;
  t.like(classifyDisk(facts({ meta: noSlot, luks2: undefined, ...{} })), { kind: 'refuse' }); // luks2 facts missing
  const f = facts({ meta: noSlot });
  f.luks2!.dataHeadZero = false;
  t.like(classifyDisk(f), { kind: 'unfinished', keyslots: 0, dataUntouched: false });
  const foreign = clone();
  foreign.tokens = {} as any;
  t.like(classifyDisk(facts({ meta: foreign, signature: { TYPE: 'crypto_LUKS', VERSION: '2' } })), { kind: 'refuse', code: 'DISK_FOREIGN_DATA' });
  t.like(classifyDisk(facts({ signature: { TYPE: 'crypto_LUKS', VERSION: '1' }, luks2: undefined })), { kind: 'refuse', code: 'DISK_FOREIGN_DATA' });
  t.like(classifyDisk(facts({ signature: { TYPE: 'ext4', USAGE: 'filesystem' }, luks2: undefined })), { kind: 'refuse', code: 'DISK_FOREIGN_DATA' });
  t.like(classifyDisk(facts({ signature: { PTTYPE: 'gpt' }, luks2: undefined })), { kind: 'refuse', code: 'DISK_FOREIGN_DATA' });
});

test('filesystem journal: mkfs only while the token says pending and nothing is there', (t) => {
  t.is(filesystemAction('pending', {}), 'mkfs');
  t.is(filesystemAction('pending', { TYPE: 'ext4' }), 'record');
  t.is(filesystemAction('ext4', { TYPE: 'ext4' }), 'none');
  t.regex((filesystemAction('ext4', {}) as { refuse: string }).refuse, /not recreating/);
  t.true(typeof filesystemAction('ext4', {}) === 'object');
  t.true(typeof filesystemAction('pending', { TYPE: 'xfs' }) === 'object');
});

test('blkid export parsing keeps values with = and drops DEVNAME', (t) => {
  t.deepEqual(parseBlkidExport('DEVNAME=/dev/x\nLABEL=a=b\nTYPE=ext4\n'), { LABEL: 'a=b', TYPE: 'ext4' });
});

// `blkid -p -o export /dev/vdb1` in the booted node image on a blank GPT partition (the e2e
// state disk): only the parent table's entry, no content. It was refused as foreign data.
const BLANK_PARTITION = [
  'DEVNAME=/dev/vdb1',
  'PART_ENTRY_SCHEME=gpt',
  'PART_ENTRY_NAME=sextant-state',
  'PART_ENTRY_UUID=5e7a7e00-0000-4000-8000-000000000002',
  'PART_ENTRY_TYPE=0fc63daf-8483-4772-8e79-3d69d8477de4',
  'PART_ENTRY_NUMBER=1',
  'PART_ENTRY_OFFSET=2048',
  'PART_ENTRY_SIZE=522207',
  'PART_ENTRY_DISK=254:16',
  '',
].join('\n');

test('a blank GPT partition (blkid reports only its table entry) is blank, its content signature still counts', (t) => {
  const sig = parseBlkidExport(BLANK_PARTITION);
  t.deepEqual(sig, {});
  t.is(classifyDisk(facts({ signature: sig, headZero: true, tailZero: true, luks2: undefined })).kind, 'blank');
  const ext4 = parseBlkidExport(BLANK_PARTITION + 'UUID=1\nTYPE=ext4\nUSAGE=filesystem\n');
  t.like(classifyDisk(facts({ signature: ext4, headZero: false, tailZero: true, luks2: undefined })), { kind: 'refuse', code: 'DISK_FOREIGN_DATA', found: 'TYPE=ext4 USAGE=filesystem UUID=1' });
});

test('fuzz: header parsing and the allow-list never throw anything but DISK_HEADER_REJECTED, and never accept junk', (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.json(), fc.string(), fc.jsonValue().map((v) => JSON.stringify({ ...OURS, keyslots: v }))), (text) => {
      try {
        const meta = parseLuks2Metadata(text);
        const v = headerViolations(meta, text, { requireToken: true });
        if (v.length === 0) return JSON.stringify(meta.segments) === JSON.stringify(OURS.segments);
        return true;
      } catch (e) {
        return isSextantError(e, 'DISK_HEADER_REJECTED');
      }
    }),
    { numRuns: 500 },
  );
  t.pass();
});
