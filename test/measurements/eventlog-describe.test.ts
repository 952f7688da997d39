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
  t.is(describe(0x00abcdef, Buffer.from([0xde, 0xad, 0x00, 0x01])), '(event type 0x00abcdef, 4 bytes) dead0001');
});

test('data a decoder does not understand is shown as hex, never thrown', (t) => {
  t.regex(describe(EV.EV_EFI_VARIABLE_BOOT, Buffer.from([1, 2, 3])), /^\(undecodable EV_EFI_VARIABLE_BOOT data\) 010203$/);
  t.regex(describe(EV.EV_EFI_GPT_EVENT, Buffer.alloc(100), 5), /^\(undecodable EV_EFI_GPT_EVENT data\)/);
});

const str8 = (v: string) => Buffer.concat([Buffer.from([v.length]), Buffer.from(v, 'latin1')]);
const GUID = Buffer.from('0f0e0d0c0b0a09080706050403020100', 'hex'); // 0c0d0e0f-0a0b-0809-0706-050403020100

test('SP800-155 Event2 and Event3 (platform identity, RIM and platform-certificate locators) are decoded', (t) => {
  const body = Buffer.concat([u32(343), GUID, str8('ACME'), str8('Rocket 9'), str8('1.2'), str8('FwCo'), u32(11129), str8('2.4.1')]);
  const event2 = Buffer.concat([Buffer.from('SP800-155 Event2', 'latin1'), body]);
  t.is(
    describe(EV.EV_NO_ACTION, event2, 0),
    'SP800-155 Event2: vendor IANA 343, reference manifest 0c0d0e0f-0a0b-0809-0706-050403020100, platform "ACME" model "Rocket 9" version "1.2", firmware "FwCo" (IANA 11129) version "2.4.1"',
  );
  const uri = Buffer.from('https://rim.example/rocket9.swidtag');
  const event3 = Buffer.concat([Buffer.from('SP800-155 Event3', 'latin1'), body, u32(1), u32(uri.length), uri, u32(0), u32(0)]);
  t.is(
    describe(EV.EV_NO_ACTION, event3, 0),
    'SP800-155 Event3: vendor IANA 343, reference manifest 0c0d0e0f-0a0b-0809-0706-050403020100, platform "ACME" model "Rocket 9" version "1.2", firmware "FwCo" (IANA 11129) version "2.4.1", RIM URI "https://rim.example/rocket9.swidtag", platform certificate none',
  );
});

test('EV_EFI_HANDOFF_TABLES2, EV_EFI_PLATFORM_FIRMWARE_BLOB2 and EV_POST_CODE2 carry their descriptions', (t) => {
  const smbios3 = Buffer.from('4415fdf29497 2c4a992ee5bbcf20e394'.replace(' ', ''), 'hex');
  t.is(describe(EV.EV_EFI_HANDOFF_TABLES2, Buffer.concat([str8('SMBIOS3'), u64(1n), smbios3, u64(0x7f000000n)])), '"SMBIOS3" SMBIOS3_TABLE@0x7f000000');
  t.is(describe(EV.EV_EFI_PLATFORM_FIRMWARE_BLOB2, Buffer.concat([str8('Fv(PEIFV)'), u64(0xffe00000n), u64(0x20000n)]), 0), '"Fv(PEIFV)" 131072 bytes at 0xffe00000');
  t.is(describe(EV.EV_POST_CODE2, Buffer.concat([str8('SEC'), u64(0xfff00000n), u64(0x1000n)]), 0), '"SEC" 4096 bytes at 0xfff00000');
  t.is(describe(EV.EV_POST_CODE2, Buffer.from('Embedded UEFI driver'), 0), '"Embedded UEFI driver"');
});

test('EV_NONHOST_INFO, systemd tags, UTF-16 command lines (odd size too) and Offset() device path nodes', (t) => {
  t.is(describe(EV.EV_NONHOST_INFO, Buffer.concat([Buffer.from('GCE NonHostInfo\0', 'latin1'), Buffer.from([4]), Buffer.alloc(15)]), 0), 'GCE non-host info: confidential computing AMD SEV-SNP');
  t.is(describe(EV.EV_NONHOST_CONFIG, Buffer.from([1, 2]), 0), 'non-host configuration (2 bytes) 0102');
  t.is(describe(EV.EV_EVENT_TAG, taggedEventData(0xf5bc582a, Buffer.from('loader.conf\0', 'utf16le')), 5), 'tag 0xf5bc582a (systemd-boot: loader.conf) "loader.conf"');
  t.is(describe(EV.EV_EVENT_TAG, taggedEventData(0x49dffe0f, Buffer.from('extra.addon.efi')), 12), 'tag 0x49dffe0f (systemd-stub: initrd addon) "extra.addon.efi"');
  const cmdline = Buffer.from('console=ttyS0 root=/dev/vda2\0', 'utf16le');
  t.is(describe(EV.EV_IPL, cmdline, 12), '"console=ttyS0 root=/dev/vda2"');
  t.is(describe(EV.EV_IPL, Buffer.concat([cmdline, Buffer.from([0])]), 8), '"console=ttyS0 root=/dev/vda2"');
  // MEDIA_RELATIVE_OFFSET_RANGE: reserved UINT32, then start and end (an option ROM in a PCI BAR).
  const offset = node(4, 8, Buffer.concat([u32(0), u64(0xf050n), u64(0x1f9ffn)]));
  const rom = Buffer.concat([u64(0x5fad1018n), u64(130544n), u64(0n), u64(BigInt(offset.length + END.length)), offset, END]);
  t.is(describe(EV.EV_EFI_BOOT_SERVICES_DRIVER, rom, 2), 'Offset(0xf050,0x1f9ff) (130544 bytes at 0x5fad1018)');
});

test('EV_EFI_SPDM_* events: device security data v1 and v2, device policy and authority', (t) => {
  const v1 = Buffer.concat([Buffer.from('SPDM Device Sec\0', 'latin1'), u16(1), u16(40), u32(1), u32(1), Buffer.alloc(12)]);
  t.is(describe(EV.EV_EFI_SPDM_FIRMWARE_BLOB, v1, 2), 'SPDM device security event v1: PCI device, SPDM hash 0x1, 12 bytes of measurement block and device context');
  const path = Buffer.concat([node(1, 1, Buffer.from([0, 3])), END]);
  const v2 = Buffer.concat([
    Buffer.from('SPDM Device Sec2', 'latin1'), u16(2), Buffer.from([0, 0]), u32(0), u32(1), u32(0), u32(8), u64(7n), u64(BigInt(path.length)), path, Buffer.alloc(8),
  ]);
  t.is(describe(EV.EV_EFI_SPDM_FIRMWARE_CONFIG, v2, 3), 'SPDM device security event v2: PCI device Pci(0x3,0x0), authenticated, SPDM measurement block (uid 0x7, 8 bytes)');
  const sha256Type = Buffer.from('2616c4c14c509240aca941f936934328', 'hex');
  const list = Buffer.concat([sha256Type, u32(28 + 48), u32(0), u32(48), Buffer.alloc(48)]);
  t.is(describe(EV.EV_EFI_SPDM_DEVICE_POLICY, uefiVariableData('devdb', list), 7), 'devdb = 1 SHA256');
  t.is(describe(EV.EV_EFI_SPDM_DEVICE_AUTHORITY, uefiVariableData('devdb', Buffer.concat([GUID, Buffer.alloc(32, 0x11)])), 7), `devdb: owner 0c0d0e0f-0a0b-0809-0706-050403020100, hash ${'11'.repeat(32)}`);
});

test('EV_EFI_VARIABLE_AUTHORITY: an owner GUID is shown only where the data has one (shim writes bare data)', (t) => {
  const shimLock = Buffer.from('50ab5d6046e00043abb63dd810dd8b23', 'hex'); // 605dab50-e046-4300-abb6-3dd810dd8b23
  const shimVar = (name: string, data: Buffer) => {
    const n = Buffer.from(name, 'utf16le');
    return Buffer.concat([shimLock, u64(BigInt(name.length)), u64(BigInt(data.length)), n, data]);
  };
  t.is(describe(EV.EV_EFI_VARIABLE_AUTHORITY, shimVar('SbatLevel', Buffer.from('sbat,1,2021030218\n')), 7), 'SHIM_LOCK:SbatLevel: "sbat,1,2021030218\\n"');
  t.is(describe(EV.EV_EFI_VARIABLE_AUTHORITY, shimVar('MokListTrusted', Buffer.from([1])), 7), 'SHIM_LOCK:MokListTrusted: 01');
});
