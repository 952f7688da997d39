import { SextantError } from '../../lib/errors.js';

/** EFI_GUID bytes of a GUID's text form: the first three fields little-endian, the last eight as written. */
export function guidBytes(text: string): Buffer {
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i.exec(text.trim());
  if (!m) throw new SextantError({ code: 'SB_KEYS_INVALID', message: `not a GUID: ${JSON.stringify(text.slice(0, 60))}` });
  const le = (h: string): Buffer => Buffer.from(h, 'hex').reverse();
  return Buffer.concat([le(m[1]), le(m[2]), le(m[3]), Buffer.from(m[4] + m[5], 'hex')]);
}

/** EFI_GLOBAL_VARIABLE: SecureBoot, PK, KEK. */
export const EFI_GLOBAL_VARIABLE = guidBytes('8be4df61-93ca-11d2-aa0d-00e098032b8c');
/** EFI_IMAGE_SECURITY_DATABASE_GUID: db, dbx. */
export const EFI_IMAGE_SECURITY_DATABASE = guidBytes('d719b2cb-3d3a-4596-a3bc-dad00e67656f');
/** EFI_CERT_X509_GUID and EFI_CERT_SHA256_GUID: the signature types of a signature list. */
export const EFI_CERT_X509 = guidBytes('a5c059a1-94e4-4aa7-87b5-ab155c2bf072');
export const EFI_CERT_SHA256 = guidBytes('c1c41626-504c-4092-aca9-41f936934328');
/** EDK2's SecureBootEnable (gEfiSecureBootEnableDisableGuid) and CustomMode (gEfiCustomModeEnableGuid). */
export const EDK2_SECURE_BOOT_ENABLE = guidBytes('f0a30bc7-af08-4556-99c4-001009c93a44');
export const EDK2_CUSTOM_MODE = guidBytes('c076ec0c-7028-4399-a072-71ee5c448b9f');
/** WIN_CERTIFICATE_UEFI_GUID's CertType for an EFI_VARIABLE_AUTHENTICATION_2 (PKCS#7). */
export const EFI_CERT_TYPE_PKCS7 = guidBytes('4aafd29d-68df-49ee-8aa9-347d375665a7');
