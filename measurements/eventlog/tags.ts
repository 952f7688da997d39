/**
 * EV_EVENT_TAG (TCG_PCClientTaggedEvent: UINT32 id, UINT32 size, data). The id says who wrote
 * it; the data is the writer's description (ASCII or UTF-16LE). The Linux EFI stub's tags
 * (0x8f3b22ec initrd, 0x8f3b22ed load options, PCR 9) describe themselves; systemd-boot and
 * systemd-stub tag their measurements with ids listed in systemd's docs/TPM2_PCR_MEASUREMENTS.md,
 * named here so `eventlog show` says which component measured what.
 */
import { decodeReader, textOrHex } from './uefi.js';

const SYSTEMD_TAGS: Record<number, string> = {
  0xd5cb7cbc: 'systemd: SMBIOS type 1',
  0xe0d47bc8: 'systemd: SMBIOS type 2',
  0xc0b3bd23: 'systemd: SMBIOS type 11',
  0xf5bc582a: 'systemd-boot: loader.conf',
  0x6c46f751: 'systemd-stub: devicetree addon',
  0x49dffe0f: 'systemd-stub: initrd addon',
  0xdac08e1a: 'systemd-stub: ucode addon',
};

export function describeTaggedEvent(data: Buffer): string {
  const r = decodeReader(data);
  const id = r.u32('taggedEventID');
  const size = r.u32('taggedEventDataSize');
  const payload = r.bytes(size, 'taggedEventData');
  const who = SYSTEMD_TAGS[id];
  return `tag 0x${id.toString(16).padStart(8, '0')}${who ? ` (${who})` : ''} ${textOrHex(payload)}`;
}
