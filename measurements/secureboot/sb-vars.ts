import { EDK2_CUSTOM_MODE, EDK2_SECURE_BOOT_ENABLE, EFI_GLOBAL_VARIABLE, EFI_IMAGE_SECURITY_DATABASE } from './guid.js';
import type { KeyDatabases, SecureBootKeys } from './key-folder.js';
import { ATTR_NV_BS, ATTR_NV_BS_RT_TIME_AUTH, efiTime, readVarstore, writeVarstore, type StoredVariable } from './varstore.js';

/**
 * An OVMF variable store with exactly these key databases enrolled and Secure Boot on
 * (EDK2's SecureBootEnable = 1, CustomMode = 0: the firmware then sets SecureBoot = 1 at
 * boot because a PK is present). `time` stamps the authenticated variables (fixed, for
 * reproducible output; later signed updates must carry a later time).
 */
export function secureBootVarstore(template: Buffer, keys: SecureBootKeys, time: Date): Buffer {
  const ts = efiTime(time);
  const none = Buffer.alloc(16);
  const vars: StoredVariable[] = [
    { vendor: EFI_GLOBAL_VARIABLE, name: 'PK', attributes: ATTR_NV_BS_RT_TIME_AUTH, timestamp: ts, data: keys.PK },
    { vendor: EFI_GLOBAL_VARIABLE, name: 'KEK', attributes: ATTR_NV_BS_RT_TIME_AUTH, timestamp: ts, data: keys.KEK },
    { vendor: EFI_IMAGE_SECURITY_DATABASE, name: 'db', attributes: ATTR_NV_BS_RT_TIME_AUTH, timestamp: ts, data: keys.db },
    ...(keys.dbx ? [{ vendor: EFI_IMAGE_SECURITY_DATABASE, name: 'dbx', attributes: ATTR_NV_BS_RT_TIME_AUTH, timestamp: ts, data: keys.dbx }] : []),
    { vendor: EDK2_SECURE_BOOT_ENABLE, name: 'SecureBootEnable', attributes: ATTR_NV_BS, timestamp: none, data: Buffer.from([1]) },
    { vendor: EDK2_CUSTOM_MODE, name: 'CustomMode', attributes: ATTR_NV_BS, timestamp: none, data: Buffer.from([0]) },
  ];
  return writeVarstore(template, vars);
}

/** The key databases a variable store holds (what PCR 7's events measure), and whether Secure Boot is enabled in it. */
export function keysInVarstore(fd: Buffer): { keys: KeyDatabases; secureBootEnabled: boolean } {
  const vars = readVarstore(fd);
  const get = (vendor: Buffer, name: string): Buffer | undefined => vars.find((v) => v.vendor.equals(vendor) && v.name === name)?.data;
  const PK = get(EFI_GLOBAL_VARIABLE, 'PK');
  const enabled = get(EDK2_SECURE_BOOT_ENABLE, 'SecureBootEnable');
  const keys: KeyDatabases = {
    PK,
    KEK: get(EFI_GLOBAL_VARIABLE, 'KEK'),
    db: get(EFI_IMAGE_SECURITY_DATABASE, 'db'),
    dbx: get(EFI_IMAGE_SECURITY_DATABASE, 'dbx'),
  };
  return { keys, secureBootEnabled: PK !== undefined && PK.length > 0 && enabled?.[0] === 1 };
}
