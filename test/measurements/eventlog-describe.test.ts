import test from 'ava';
import { describeEvent } from '../../measurements/eventlog/describe.js';
import { parseEventLog } from '../../measurements/eventlog/parse.js';
import { EV } from '../../measurements/eventlog/types.js';
import { buildEventLog, imageLoadEventData, taggedEventData, uefiVariableData } from '../helpers/eventlog.js';

function describe(type: number, data: Buffer, pcr = 1): string {
  return describeEvent(parseEventLog(buildEventLog([{ pcr, type, data }])).events[1]);
}

const u16 = (n: number) => Buffer.from([n & 0xff, n >> 8]);
const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const u64 = (n: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(n); return b; };
const node = (type: number, sub: number, body: Buffer) => Buffer.concat([Buffer.from([type, sub]), u16(4 + body.length), body]);
const END = Buffer.from([0x7f, 0xff, 0x04, 0x00]);
// GUID c12a7328-f81f-11d2-ba4b-00a0c93ec93b (ESP type) as stored: first three fields little-endian.
const ESP_TYPE = Buffer.from('28732ac11ff8d211ba4b00a0c93ec93b', 'hex');
const DISK = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

test('the Spec ID and StartupLocality EV_NO_ACTION events are decoded', (t) => {
  const log = parseEventLog(buildEventLog([], { banks: ['sha1', 'sha256'], startupLocality: 3 }));
  t.is(describeEvent(log.events[0]), 'Spec ID Event03: spec 2.0 errata 0, platform class 0, UINTN 2 bytes, banks sha1(20) sha256(32)');
  t.is(describeEvent(log.events[1]), 'StartupLocality: 3');
});

test('UEFI variables: BootOrder, a Boot#### load option with its device path, SecureBoot, a db', (t) => {
  t.is(describe(EV.EV_EFI_VARIABLE_BOOT, uefiVariableData('BootOrder', Buffer.from([1, 0, 0, 0]))), 'BootOrder = Boot0001, Boot0000');
  const hd = node(4, 1, Buffer.concat([u32(1), u64(2048n), u64(204800n), DISK, Buffer.from([2, 2])]));
  const file = node(4, 4, Buffer.from('\\EFI\\BOOT\\BOOTX64.EFI\0', 'utf16le'));
  const path = Buffer.concat([node(2, 1, Buffer.concat([u32(0x0a0341d0), u32(0)])), node(1, 1, Buffer.from([0, 4])), hd, file, END]);
  const option = Buffer.concat([u32(1), u16(path.length), Buffer.from('UEFI QEMU HARDDISK\0', 'utf16le'), path]);
  t.is(
    describe(EV.EV_EFI_VARIABLE_BOOT, uefiVariableData('Boot0001', option)),
    'Boot0001 = "UEFI QEMU HARDDISK" PciRoot(0x0)/Pci(0x4,0x0)/HD(1,GPT,33221100-5544-7766-8899-aabbccddeeff,0x800,0x32000)/\\EFI\\BOOT\\BOOTX64.EFI',
  );
  t.is(describe(EV.EV_EFI_VARIABLE_DRIVER_CONFIG, uefiVariableData('SecureBoot', Buffer.from([1])), 7), 'SecureBoot = 1 (on)');
  // One EFI_SIGNATURE_LIST of two SHA-256 entries (owner GUID + 32 bytes each).
  const sha256Type = Buffer.from('2616c4c14c509240aca941f936934328', 'hex');
  const list = Buffer.concat([sha256Type, u32(28 + 2 * 48), u32(0), u32(48), Buffer.alloc(96)]);
  t.is(describe(EV.EV_EFI_VARIABLE_DRIVER_CONFIG, uefiVariableData('dbx', list), 7), 'dbx = 2 SHA256');
  t.is(describe(EV.EV_EFI_VARIABLE_DRIVER_CONFIG, uefiVariableData('PK', Buffer.alloc(0)), 7), 'PK = (empty)');
});

test('image loads, tagged events, GPT, blobs, handoff tables, separators and strings', (t) => {
  t.is(describe(EV.EV_EFI_BOOT_SERVICES_APPLICATION, imageLoadEventData('\\EFI\\BOOT\\BOOTX64.EFI', 0x7d5e3018n, 0x2a0000n), 4), '\\EFI\\BOOT\\BOOTX64.EFI (2752512 bytes at 0x7d5e3018)');
  t.is(describe(EV.EV_EVENT_TAG, taggedEventData(0x8f3b22ec, Buffer.from('Linux initrd\0')), 9), 'tag 0x8f3b22ec "Linux initrd"');
  const header = Buffer.alloc(92);
  header.write('EFI PART', 0, 'latin1');
  DISK.copy(header, 56);
  header.writeUInt32LE(128, 84);
  const entry = Buffer.alloc(128);
  ESP_TYPE.copy(entry, 0);
  Buffer.from('esp', 'utf16le').copy(entry, 56);
  t.is(describe(EV.EV_EFI_GPT_EVENT, Buffer.concat([header, u64(1n), entry]), 5), 'GPT disk 33221100-5544-7766-8899-aabbccddeeff, 1 partition: 1:"esp" EFI System Partition');
  t.is(describe(EV.EV_EFI_PLATFORM_FIRMWARE_BLOB, Buffer.concat([u64(0x820000n), u64(0xe0000n)]), 0), 'firmware blob 917504 bytes at 0x820000');
  t.is(describe(EV.EV_EFI_PLATFORM_FIRMWARE_BLOB2, Buffer.concat([Buffer.from([4]), Buffer.from('DXE\0'), u64(0x1000n), u64(16n)]), 0), '"DXE" 16 bytes at 0x1000');
  const smbios = Buffer.from('312d9deb882dd3119a160090273fc14d', 'hex');
  t.is(describe(EV.EV_EFI_HANDOFF_TABLES, Buffer.concat([u64(1n), smbios, u64(0x7f8ef000n)])), 'tables SMBIOS_TABLE@0x7f8ef000');
  t.is(describe(EV.EV_SEPARATOR, Buffer.alloc(4)), 'separator');
  t.is(describe(EV.EV_SEPARATOR, Buffer.alloc(4, 0xff)), 'separator (error)');
  t.is(describe(EV.EV_IPL, Buffer.from('.linux\0', 'utf16le'), 11), '".linux"');
  t.is(describe(EV.EV_EFI_ACTION, Buffer.from('Exit Boot Services Invocation'), 5), '"Exit Boot Services Invocation"');
  t.is(describe(EV.EV_POST_CODE, Buffer.concat([u64(0xffc00000n), u64(0x400000n)]), 0), 'POST code 4194304 bytes at 0xffc00000');
  t.is(describe(EV.EV_S_CRTM_VERSION, Buffer.alloc(2), 0), '(empty version string)');
  t.is(describe(0x00abcdef, Buffer.from([0xde, 0xad, 0x00, 0x01])), 'dead0001');
});

test('data a decoder does not understand is shown as hex, never thrown', (t) => {
  t.regex(describe(EV.EV_EFI_VARIABLE_BOOT, Buffer.from([1, 2, 3])), /^\(undecodable EV_EFI_VARIABLE_BOOT data\) 010203$/);
  t.regex(describe(EV.EV_EFI_GPT_EVENT, Buffer.alloc(100), 5), /^\(undecodable EV_EFI_GPT_EVENT data\)/);
});
