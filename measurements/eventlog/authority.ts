/**
 * The data of EV_EFI_VARIABLE_AUTHORITY (and EV_EFI_SPDM_DEVICE_AUTHORITY) events: what
 * authorized a load. Firmware writes an EFI_SIGNATURE_DATA (owner GUID, then the certificate or
 * hash from db), but real logs also carry, under the same event type, shim's entries (SHIM_LOCK
 * GUID): "Shim" and "MokList" with a bare DER certificate, "SbatLevel" with its text, and
 * "MokListTrusted" with one byte; and some firmware logs the bare certificate from db too. So
 * the content decides, never the position: an owner GUID is shown only where one is.
 */
import { X509Certificate } from 'node:crypto';
import { guidLabel, hexPreview, isAsciiText, quoted } from './uefi.js';

/** A short name for a certificate: its subject CN (or whole subject), and its issuer's CN. */
function certificateName(der: Buffer): string | undefined {
  if (der.length < 4 || der[0] !== 0x30 || der[1] !== 0x82) return undefined;
  const length = 4 + der.readUInt16BE(2);
  if (length > der.length) return undefined;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der.subarray(0, length));
  } catch {
    return undefined;
  }
  const cn = (dn: string): string => /(?:^|\n)CN=([^\n]*)/.exec(dn)?.[1] ?? dn.replace(/\n/g, ', ');
  const trailing = der.length > length ? ` (+${der.length - length} bytes)` : '';
  return `certificate ${quoted(cn(cert.subject))} issued by ${quoted(cn(cert.issuer))}${trailing}`;
}

export function describeAuthority(data: Buffer): string {
  if (data.length === 0) return '(empty)';
  const bare = certificateName(data);
  if (bare) return bare;
  if (data.length > 16) {
    const owned = certificateName(data.subarray(16));
    const owner = guidLabel(data.subarray(0, 16));
    if (owned) return `owner ${owner}, ${owned}`;
    // A db hash entry: EFI_SIGNATURE_DATA with a SHA-256 digest.
    if (data.length === 48 && !isAsciiText(data)) return `owner ${owner}, hash ${data.subarray(16).toString('hex')}`;
  }
  if (isAsciiText(data)) return quoted(data.toString('latin1').replace(/\0$/, ''));
  return hexPreview(data);
}
