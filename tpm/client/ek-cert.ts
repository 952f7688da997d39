/**
 * The EK certificate the TPM manufacturer (or swtpm_setup) stored in NV (TCG EK Credential
 * Profile 2.x §2.2.1.5): RSA 2048 at 0x01C00002, ECC P-256 at 0x01C0000A. Some TPMs only fill
 * the "high range" (0x01C00012 onward); swtpm 0.7 writes its ECC EK certificate (P-384) there.
 */
import { SextantError, isSextantError } from '../../lib/errors.js';
import type { Tpm } from './tpm.js';

export type EkType = 'rsa' | 'ecc';

/** NV indices to try, in order: the low-range default first, then the high range. */
export const EK_CERT_INDICES: Record<EkType, readonly number[]> = {
  rsa: [0x01c00002, 0x01c00012],
  ecc: [0x01c0000a, 0x01c00014, 0x01c00016],
};

/** TPM_RC_HANDLE (format one, any handle number): the index is not defined. */
function isMissingIndex(e: unknown): boolean {
  const rc = isSextantError(e, 'TPM_RC') ? (e as unknown as { rc?: unknown }).rc : undefined;
  return typeof rc === 'number' && (rc & 0xbf) === 0x8b;
}

export interface EkCertificate {
  type: EkType;
  nvIndex: number;
  /** DER bytes of the X.509 certificate (NV padding removed). */
  der: Uint8Array;
}

export async function readEkCertificate(tpm: Tpm, type: EkType): Promise<EkCertificate> {
  for (const nvIndex of EK_CERT_INDICES[type]) {
    let data: Uint8Array;
    try {
      data = (await tpm.nvReadAll(nvIndex)).data;
    } catch (e) {
      if (isMissingIndex(e)) continue;
      throw e;
    }
    return { type, nvIndex, der: trimDer(data, nvIndex) };
  }
  throw new SextantError({
    code: 'TPM_NO_EK_CERT',
    message: `no ${type.toUpperCase()} EK certificate in NV (looked at ${EK_CERT_INDICES[type].map((i) => '0x' + i.toString(16)).join(', ')})`,
  });
}

/** The DER SEQUENCE at the start of `data`, without the zero padding some TPMs store after it. */
export function trimDer(data: Uint8Array, nvIndex: number): Uint8Array {
  const bad = (why: string): never => {
    throw new SextantError({ code: 'TPM_NO_EK_CERT', message: `NV index 0x${nvIndex.toString(16)} does not hold a DER certificate: ${why}` });
  };
  if (data.length < 2 || data[0] !== 0x30) bad('no SEQUENCE tag');
  let length = data[1];
  let header = 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n < 1 || n > 3 || data.length < 2 + n) bad('bad length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + data[2 + i];
    header += n;
  }
  if (header + length > data.length) bad(`${header + length} bytes declared, ${data.length} stored`);
  return data.slice(0, header + length);
}

export function derToPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
