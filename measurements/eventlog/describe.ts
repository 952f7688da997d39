/**
 * One-line descriptions of event data, for `eventlog show` and for naming components in a
 * mismatch. Never throws: data a decoder does not understand is shown as hex.
 */
import type { LogEvent } from './parse.js';
import { describeAuthority } from './authority.js';
import { describeNoAction } from './noaction.js';
import { describeSpdmEvent } from './spdm.js';
import { describeTaggedEvent } from './tags.js';
import { EV } from './types.js';
import { DecodeError, decodeReader, devicePathText, eventText, guidLabel, guidString, hexPreview, printable, textOrHex, utf16 } from './uefi.js';

export { hexPreview } from './uefi.js';

const CERT_TYPES: Record<string, string> = {
  'c1c41626-504c-4092-aca9-41f936934328': 'SHA256',
  'a5c059a1-94e4-4aa7-87b5-ab155c2bf072': 'X509',
  '3c5766e8-269c-4e34-aa14-ed776e85b3b6': 'RSA2048',
  '826ca512-cf10-4ac9-b187-be01496631bd': 'SHA1',
};

/** EFI_SIGNATURE_LIST entries, summarized as counts per certificate type. */
function signatureLists(b: Buffer): string {
  const counts = new Map<string, number>();
  let pos = 0;
  while (pos < b.length) {
    const r = decodeReader(b.subarray(pos));
    const type = guidString(r.bytes(16, 'SignatureType'));
    const listSize = r.u32('SignatureListSize');
    const headerSize = r.u32('SignatureHeaderSize');
    const sigSize = r.u32('SignatureSize');
    if (listSize < 28 + headerSize || sigSize === 0 || listSize > b.length - pos) throw new DecodeError('bad signature list');
    const name = CERT_TYPES[type] ?? type;
    counts.set(name, (counts.get(name) ?? 0) + Math.floor((listSize - 28 - headerSize) / sigSize));
    pos += listSize;
  }
  const parts = [...counts].map(([k, v]) => `${v} ${k}`);
  return parts.length ? parts.join(', ') : '(empty)';
}

function loadOption(b: Buffer): string {
  const r = decodeReader(b);
  const attributes = r.u32('Attributes');
  const pathLength = r.u16('FilePathListLength');
  let end = r.pos;
  while (end + 1 < b.length && !(b[end] === 0 && b[end + 1] === 0)) end += 2;
  const description = utf16(b.subarray(r.pos, end));
  const path = devicePathText(b.subarray(end + 2, end + 2 + pathLength));
  const active = attributes & 1 ? '' : ' (inactive)';
  return `${JSON.stringify(printable(description))} ${path}${active}`;
}

const BOOLEAN_VARIABLES = new Set(['SecureBoot', 'SetupMode', 'AuditMode', 'DeployedMode', 'MokSBState']);
const SIGNATURE_DATABASES = new Set(['PK', 'KEK', 'db', 'dbx', 'dbt', 'dbr', 'MokList', 'MokListX', 'MokListTrusted']);

/** The value part of a UEFI variable, decoded for the variables firmware usually measures. */
function variableValue(name: string, data: Buffer): string {
  if (data.length === 0) return '(empty)';
  if (BOOLEAN_VARIABLES.has(name) && data.length === 1) return `${data[0]} (${data[0] ? 'on' : 'off'})`;
  if ((name === 'BootOrder' || name === 'BootNext') && data.length % 2 === 0) {
    const ids: string[] = [];
    for (let i = 0; i < data.length; i += 2) ids.push(`Boot${data.readUInt16LE(i).toString(16).padStart(4, '0').toUpperCase()}`);
    return ids.join(', ');
  }
  if (/^(Boot|Driver|SysPrep)[0-9A-Fa-f]{4}$/.test(name)) return loadOption(data);
  if (SIGNATURE_DATABASES.has(name)) return signatureLists(data);
  return hexPreview(data);
}

/** UEFI_VARIABLE_DATA: VariableName GUID, name length, data length, UTF-16 name, data. */
function variable(e: LogEvent): string {
  const r = decodeReader(e.data);
  const guid = r.bytes(16, 'VariableName');
  const nameChars = r.length64('UnicodeNameLength');
  const dataLength = r.length64('VariableDataLength');
  const name = utf16(r.bytes(nameChars * 2, 'UnicodeName'));
  const data = r.bytes(dataLength, 'VariableData');
  const scope = guidLabel(guid);
  const label = `${scope === 'EFI_GLOBAL_VARIABLE' || scope === 'EFI_IMAGE_SECURITY_DATABASE' ? '' : scope + ':'}${printable(name)}`;
  if (e.type === EV.EV_EFI_VARIABLE_AUTHORITY || e.type === EV.EV_EFI_SPDM_DEVICE_AUTHORITY) return `${label}: ${describeAuthority(data)}`;
  // The SPDM device database (devdb) is a list of EFI_SIGNATURE_LISTs, like db.
  if (e.type === EV.EV_EFI_SPDM_DEVICE_POLICY) return `${label} = ${signatureLists(data)}`;
  return `${label} = ${variableValue(name, data)}`;
}

function imageLoad(e: LogEvent): string {
  const r = decodeReader(e.data);
  const location = r.u64('ImageLocationInMemory');
  const length = r.u64('ImageLengthInMemory');
  r.u64('ImageLinkTimeAddress');
  const pathLength = r.length64('LengthOfDevicePath');
  const path = devicePathText(r.bytes(pathLength, 'DevicePath'));
  return `${path || '(no device path)'} (${length} bytes at 0x${location.toString(16)})`;
}

function gpt(e: LogEvent): string {
  const r = decodeReader(e.data);
  const header = r.bytes(92, 'UEFI_PARTITION_TABLE_HEADER');
  if (header.subarray(0, 8).toString('latin1') !== 'EFI PART') throw new DecodeError('no GPT signature');
  const disk = guidString(header.subarray(56, 72));
  const entrySize = header.readUInt32LE(84);
  const count = r.u64('NumberOfPartitions');
  if (entrySize < 128 || count * BigInt(entrySize) > BigInt(r.remaining)) throw new DecodeError('bad partition count');
  const parts: string[] = [];
  for (let i = 0; i < Number(count); i++) {
    const p = r.bytes(entrySize, 'partition entry');
    const type = guidLabel(p.subarray(0, 16));
    const name = utf16(p.subarray(56, 128));
    parts.push(`${i + 1}:${name ? JSON.stringify(printable(name, 36)) + ' ' : ''}${type}`);
  }
  return `GPT disk ${disk}, ${count} partition${count === 1n ? '' : 's'}${parts.length ? ': ' + parts.join(', ') : ''}`;
}

function blob(r: ReturnType<typeof decodeReader>, label: string): string {
  const base = r.u64('BlobBase');
  const length = r.u64('BlobLength');
  return `${label}${length} bytes at 0x${base.toString(16)}`;
}

/** UEFI_PLATFORM_FIRMWARE_BLOB2 and UEFI_HANDOFF_TABLE_POINTERS2 start with a sized description. */
function sizedDescription(r: ReturnType<typeof decodeReader>): string {
  const n = r.u8('description size');
  return JSON.stringify(printable(r.bytes(n, 'description').toString('latin1').replace(/\0+$/, ''))) + ' ';
}

function handoffTables(r: ReturnType<typeof decodeReader>, label: string): string {
  const count = r.u64('NumberOfTables');
  if (count * 24n > BigInt(r.remaining)) throw new DecodeError('bad table count');
  const tables: string[] = [];
  for (let i = 0; i < Number(count); i++) {
    const g = guidLabel(r.bytes(16, 'VendorGuid'));
    tables.push(`${g}@0x${r.u64('VendorTable').toString(16)}`);
  }
  return `${label}${tables.join(', ') || '(no tables)'}`;
}

function separator(e: LogEvent): string {
  if (e.data.length !== 4) return `separator ${textOrHex(e.data)}`;
  const v = e.data.readUInt32LE(0);
  // Windows' boot manager writes "WBCL" as the separator of PCRs 12-14.
  return v === 0 ? 'separator' : v === 0xffffffff ? 'separator (error)' : `separator ${eventText(e.data) !== undefined ? textOrHex(e.data) : '0x' + v.toString(16)}`;
}

/** A string, or a UEFI_PLATFORM_FIRMWARE_BLOB (base + length) where the spec allows either. */
function textOrBlob(e: LogEvent, label: string): string {
  if (eventText(e.data) === undefined && e.data.length === 16) return blob(decodeReader(e.data), label);
  return textOrHex(e.data);
}

const GCE_TECHNOLOGIES = ['none', 'AMD SEV', 'AMD SEV-ES', 'Intel TDX', 'AMD SEV-SNP'];

/** EV_NONHOST_CODE/CONFIG/INFO: vendor-defined data about code outside the host CPU's control. */
function nonHost(e: LogEvent, what: string): string {
  // Google Compute Engine's firmware: "GCE NonHostInfo\0", then the confidential-computing technology.
  if (e.data.length >= 17 && e.data.subarray(0, 16).toString('latin1') === 'GCE NonHostInfo\0') {
    const t = e.data[16];
    return `GCE non-host info: confidential computing ${GCE_TECHNOLOGIES[t] ?? `technology ${t}`}`;
  }
  return `non-host ${what} (${e.data.length} bytes) ${textOrHex(e.data)}`;
}

function describeUnsafe(e: LogEvent): string {
  switch (e.type) {
    case EV.EV_NO_ACTION:
      return describeNoAction(e);
    case EV.EV_SEPARATOR:
      return separator(e);
    case EV.EV_EFI_VARIABLE_DRIVER_CONFIG:
    case EV.EV_EFI_VARIABLE_BOOT:
    case EV.EV_EFI_VARIABLE_BOOT2:
    case EV.EV_EFI_VARIABLE_AUTHORITY:
    case EV.EV_EFI_SPDM_DEVICE_POLICY:
    case EV.EV_EFI_SPDM_DEVICE_AUTHORITY:
      return variable(e);
    case EV.EV_EFI_BOOT_SERVICES_APPLICATION:
    case EV.EV_EFI_BOOT_SERVICES_DRIVER:
    case EV.EV_EFI_RUNTIME_SERVICES_DRIVER:
      return imageLoad(e);
    case EV.EV_EFI_GPT_EVENT:
    case EV.EV_EFI_GPT_EVENT2:
      return gpt(e);
    case EV.EV_EVENT_TAG:
      return describeTaggedEvent(e.data);
    case EV.EV_EFI_PLATFORM_FIRMWARE_BLOB:
      return blob(decodeReader(e.data), 'firmware blob ');
    case EV.EV_EFI_PLATFORM_FIRMWARE_BLOB2:
    case EV.EV_POST_CODE2: {
      // UEFI_PLATFORM_FIRMWARE_BLOB2; EV_POST_CODE2 may carry a string instead.
      if (e.type === EV.EV_POST_CODE2 && eventText(e.data) !== undefined) return textOrHex(e.data);
      const r = decodeReader(e.data);
      return blob(r, sizedDescription(r));
    }
    case EV.EV_EFI_HANDOFF_TABLES:
      return handoffTables(decodeReader(e.data), 'tables ');
    case EV.EV_EFI_HANDOFF_TABLES2: {
      const r = decodeReader(e.data);
      return handoffTables(r, sizedDescription(r));
    }
    case EV.EV_EFI_SPDM_FIRMWARE_BLOB:
    case EV.EV_EFI_SPDM_FIRMWARE_CONFIG:
      return describeSpdmEvent(e);
    case EV.EV_POST_CODE:
      return textOrBlob(e, 'POST code ');
    case EV.EV_S_CRTM_CONTENTS:
      return textOrBlob(e, 'S-CRTM ');
    case EV.EV_CPU_MICROCODE:
      return textOrBlob(e, 'microcode ');
    case EV.EV_S_CRTM_VERSION:
      if (e.data.length > 0 && e.data.every((x) => x === 0)) return '(empty version string)';
      if (eventText(e.data) === undefined && e.data.length === 16) return `version GUID ${guidString(e.data)}`;
      return textOrHex(e.data);
    case EV.EV_NONHOST_CODE:
      return nonHost(e, 'code');
    case EV.EV_NONHOST_CONFIG:
      return nonHost(e, 'configuration');
    case EV.EV_NONHOST_INFO:
      return nonHost(e, 'info');
    case EV.EV_UNUSED:
      return `(EV_UNUSED, ${e.data.length} bytes) ${hexPreview(e.data)}`;
    case EV.EV_PREBOOT_CERT:
    case EV.EV_ACTION:
    case EV.EV_PLATFORM_CONFIG_FLAGS:
    case EV.EV_TABLE_OF_DEVICES:
    case EV.EV_COMPACT_HASH:
    case EV.EV_IPL:
    case EV.EV_IPL_PARTITION_DATA:
    case EV.EV_OMIT_BOOT_DEVICE_EVENTS:
    case EV.EV_EFI_ACTION:
    case EV.EV_EFI_HCRTM_EVENT:
      // Strings (EV_IPL: ASCII from GRUB, UTF-16LE from systemd-boot/-stub), or vendor data.
      return textOrHex(e.data);
    default:
      // A type the spec does not define (or EV_EFI_EVENT_BASE itself): its code and size, no guessed meaning.
      return `(event type 0x${e.type.toString(16).padStart(8, '0')}, ${e.data.length} bytes) ${hexPreview(e.data)}`;
  }
}

/** A one-line description of an event's data (decoded where the format is known). */
export function describeEvent(e: LogEvent): string {
  try {
    return describeUnsafe(e);
  } catch {
    // Firmware writes odd data; a description must never make a valid log unreadable.
    return `(undecodable ${e.typeName} data) ${hexPreview(e.data)}`;
  }
}
