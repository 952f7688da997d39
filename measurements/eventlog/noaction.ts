/**
 * EV_NO_ACTION events (TCG PC Client Platform Firmware Profile): never extended, identified by
 * a 16-byte signature. Decoded: the Spec ID events (Event03, and Event00/02 of SHA-1 logs),
 * StartupLocality, the SP800-155 platform-identity events (Event, Event2, Event3 with its RIM
 * and platform-certificate locators), and the SPDM NV-index extend records.
 */
import { parseLegacySpecIdEvent, parseSpecIdEvent, type LogEvent } from './parse.js';
import { STARTUP_LOCALITY_SIGNATURE } from './replay.js';
import { decodeReader, devicePathText, guidLabel, guidString, hexPreview, printable, textOrHex, utf16 } from './uefi.js';

type Reader = ReturnType<typeof decodeReader>;

function specId(e: LogEvent, sig: string): string {
  const legacy = sig !== 'Spec ID Event03\0';
  const s = legacy ? parseLegacySpecIdEvent(e.data, e.offset) : parseSpecIdEvent(e.data, e.offset);
  const v = s.specVersion;
  const banks = legacy ? 'sha1 (TCG 1.2 log format)' : s.algorithms.map((a) => `${a.alg}(${a.digestSize})`).join(' ');
  return `${s.signature}: spec ${v.major}.${v.minor} errata ${v.errata}, platform class ${s.platformClass}, UINTN ${s.uintnSize} bytes, banks ${banks}`;
}

/** A UINT8-size-prefixed string of the SP800-155 events. */
function str8(r: Reader, what: string): string {
  return JSON.stringify(printable(r.bytes(r.u8(`${what} size`), what).toString('latin1').replace(/\0+$/, '')));
}

const LOCATOR_TYPES = ['raw', 'URI', 'device path', 'UEFI variable'];

/** RIM / platform-certificate locator of SP800-155 Event3: UINT32 type, UINT32 length, data. */
function locator(r: Reader, what: string): string {
  const type = r.u32(`${what} type`);
  const data = r.bytes(r.u32(`${what} length`), what);
  if (data.length === 0) return `${what} none`;
  switch (type) {
    case 1:
      return `${what} URI ${JSON.stringify(printable(data.toString('latin1').replace(/\0+$/, '')))}`;
    case 2:
      return `${what} device path ${devicePathText(data)}`;
    case 3:
      return `${what} UEFI variable ${guidLabel(data.subarray(0, 16))}:${printable(utf16(data.subarray(16)))}`;
    default:
      return `${what} ${LOCATOR_TYPES[type] ?? `type ${type}`} ${hexPreview(data)}`;
  }
}

/** TCG_Sp800_155_PlatformId_Event2/3 (PFP 1.06 section 10.4.5.2). */
function sp800155(e: LogEvent, version: '2' | '3'): string {
  const r = decodeReader(e.data.subarray(16));
  const vendor = r.u32('VendorId');
  const rim = guidString(r.bytes(16, 'ReferenceManifestGuid'));
  const parts = [
    `platform ${str8(r, 'PlatformManufacturerStr')} model ${str8(r, 'PlatformModel')} version ${str8(r, 'PlatformVersion')}`,
    `firmware ${str8(r, 'FirmwareManufacturerStr')} (IANA ${r.u32('FirmwareManufacturerId')}) version ${str8(r, 'FirmwareVersion')}`,
  ];
  if (version === '3') parts.push(locator(r, 'RIM'), locator(r, 'platform certificate'));
  return `SP800-155 Event${version}: vendor IANA ${vendor}, reference manifest ${rim}, ${parts.join(', ')}`;
}

/** TCG_NV_INDEX_INSTANCE/DYNAMIC_EVENT_LOG_STRUCT: what SPDM extended into an NV index. */
function nvIndex(e: LogEvent, sig: string): string {
  const r = decodeReader(e.data.subarray(16));
  const version = r.u16('Version');
  r.bytes(6, 'Reserved');
  const name = sig.replace(/[\0 ]+$/, '');
  if (name === 'NvIndexInstance') return `NvIndexInstance v${version}: SPDM device security data (${r.remaining} bytes)`;
  const uid = r.u64('Uid');
  const description = r.bytes(r.u16('DescriptionSize'), 'Description').toString('latin1').replace(/\0+$/, '');
  const data = r.bytes(r.u16('DataSize'), 'Data');
  return `NvIndexDynamic v${version}: uid 0x${uid.toString(16)} ${JSON.stringify(printable(description))} ${hexPreview(data)}`;
}

export function describeNoAction(e: LogEvent): string {
  const sig = e.data.subarray(0, 16).toString('latin1');
  if (sig === 'Spec ID Event03\0' || sig === 'Spec ID Event00\0' || sig === 'Spec ID Event02\0') return specId(e, sig);
  if (sig === STARTUP_LOCALITY_SIGNATURE && e.data.length >= 17) return `StartupLocality: ${e.data[16]}`;
  if (sig === 'SP800-155 Event2' || sig === 'SP800-155 Event3') return sp800155(e, sig[15] as '2' | '3');
  // The first version's layout is vendor-defined after the signature: say what it is and its size.
  if (sig === 'SP800-155 Event\0') return `SP800-155 Event: platform reference manifest information (${e.data.length} bytes)`;
  if (sig === 'NvIndexInstance\0' || sig === 'NvIndexDynamic \0' || sig === 'NvIndexDynamic\0\0') return nvIndex(e, sig);
  return textOrHex(e.data);
}
