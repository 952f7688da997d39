/**
 * UEFI_VARIABLE_DATA (TCG PC Client Platform Firmware Profile, 10.2.6): the event data of
 * EV_EFI_VARIABLE_DRIVER_CONFIG and EV_EFI_VARIABLE_AUTHORITY, and, as EDK2 measures them,
 * exactly the bytes their digests cover:
 * {VariableName GUID, UnicodeNameLength u64 (characters, no NUL), VariableDataLength u64,
 *  UnicodeName (UTF-16LE, no NUL), VariableData}.
 */
export function uefiVariableData(vendor: Buffer, name: string, data: Buffer): Buffer {
  const unicode = Buffer.from(name, 'utf16le');
  const head = Buffer.alloc(32);
  vendor.copy(head, 0);
  head.writeBigUInt64LE(BigInt(name.length), 16);
  head.writeBigUInt64LE(BigInt(data.length), 24);
  return Buffer.concat([head, unicode, data]);
}
