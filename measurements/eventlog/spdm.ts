/**
 * EV_EFI_SPDM_FIRMWARE_BLOB / EV_EFI_SPDM_FIRMWARE_CONFIG (PC Client PFP 1.06, section 10.4.x,
 * measurements a device reported over SPDM): TCG_DEVICE_SECURITY_EVENT_DATA, version 1
 * ("SPDM Device Sec") or 2 ("SPDM Device Sec2", with the device's authentication state and
 * its device path). Only the header is decoded; the SPDM blocks are shown by size.
 */
import type { LogEvent } from './parse.js';
import { decodeReader, devicePathText, hexPreview } from './uefi.js';

const DEVICE_TYPES = ['no device', 'PCI', 'USB'];
const AUTH_STATES: Record<number, string> = {
  0: 'authenticated',
  1: 'no authentication',
  2: 'no binding',
  3: 'failed: no signature',
  4: 'failed: invalid',
  0xff: 'no SPDM',
};
const SUB_HEADERS = ['SPDM measurement block', 'SPDM certificate chain'];

const deviceType = (t: number): string => DEVICE_TYPES[t] ?? `device type ${t}`;

export function describeSpdmEvent(e: LogEvent): string {
  const sig = e.data.subarray(0, 16).toString('latin1');
  const r = decodeReader(e.data.subarray(16));
  if (sig === 'SPDM Device Sec\0') {
    const version = r.u16('Version');
    r.u16('Length');
    const hashAlgo = r.u32('SpdmHashAlgo');
    return `SPDM device security event v${version}: ${deviceType(r.u32('DeviceType'))} device, SPDM hash 0x${hashAlgo.toString(16)}, ${r.remaining} bytes of measurement block and device context`;
  }
  if (sig === 'SPDM Device Sec2') {
    const version = r.u16('Version');
    const auth = r.u8('AuthState');
    r.u8('Reserved');
    r.u32('Length');
    const device = deviceType(r.u32('DeviceType'));
    const sub = r.u32('SubHeaderType');
    r.u32('SubHeaderLength');
    const uid = r.u64('SubHeaderUID');
    const path = devicePathText(r.bytes(r.length64('DevicePathLength'), 'DevicePath'));
    return `SPDM device security event v${version}: ${device} device ${path || '(no device path)'}, ${AUTH_STATES[auth] ?? `auth state ${auth}`}, ${SUB_HEADERS[sub] ?? `sub-header type ${sub}`} (uid 0x${uid.toString(16)}, ${r.remaining} bytes)`;
  }
  return hexPreview(e.data);
}
