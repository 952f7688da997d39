/**
 * The EK certificates the TPM manufacturer (or swtpm_setup) stored in NV (TCG EK Credential
 * Profile 2.x §2.2.1.4-5): one index per EK template, low range (L-1 RSA 2048 at 0x01C00002,
 * L-2 ECC P-256 at 0x01C0000A) and high range (H-1 .. H-7 from 0x01C00012), and the EK
 * certificate chain, one or more DER certificates per index, in 0x01C00100..0x01C001FF.
 * swtpm 0.7 writes its ECC EK certificate (P-384, H-3) at 0x01C00016.
 */
import { SextantError, isSextantError } from '../../lib/errors.js';
import { certificateInNv, certificatesInNv } from '../ek/cert-bytes.js';
import type { Tpm } from './tpm.js';

export type EkType = 'rsa' | 'ecc';

/** Every standard EK certificate index, with the template it certifies. */
export const EK_CERT_INDEX: Readonly<Record<number, { template: string; type: EkType }>> = {
  0x01c00002: { template: 'L-1 RSA 2048', type: 'rsa' },
  0x01c0000a: { template: 'L-2 ECC NIST P-256', type: 'ecc' },
  0x01c00012: { template: 'H-1 RSA 2048', type: 'rsa' },
  0x01c00014: { template: 'H-2 ECC NIST P-256', type: 'ecc' },
  0x01c00016: { template: 'H-3 ECC NIST P-384', type: 'ecc' },
  0x01c00018: { template: 'H-4 ECC NIST P-521', type: 'ecc' },
  0x01c0001a: { template: 'H-5 ECC SM2 P-256', type: 'ecc' },
  0x01c0001c: { template: 'H-6 RSA 3072', type: 'rsa' },
  0x01c0001e: { template: 'H-7 RSA 4096', type: 'rsa' },
};

/** The EK certificate chain indices (EK Credential Profile 2.3 §2.2.1.5.2). */
export const EK_CHAIN_FIRST = 0x01c00100;
export const EK_CHAIN_LAST = 0x01c001ff;

/** NV indices to try for an EK of `type`, in order: the low-range default first, then the high range. */
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
  /** The template the index is for ("L-1 RSA 2048"). */
  template: string;
  /** DER bytes of the X.509 certificate (NV padding and header removed). */
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
    return { type, nvIndex, template: EK_CERT_INDEX[nvIndex].template, der: trimDer(data, nvIndex) };
  }
  throw new SextantError({
    code: 'TPM_NO_EK_CERT',
    message: `no ${type.toUpperCase()} EK certificate in NV (looked at ${EK_CERT_INDICES[type].map(hex).join(', ')})`,
  });
}

export interface EkCredentials {
  /** Every EK certificate found, in index order. */
  certificates: EkCertificate[];
  /** The certificates of the chain indices, in index order (as the manufacturer ordered them). */
  chain: Uint8Array[];
}

/**
 * Everything the TPM holds about its EKs: the defined indices of the EK certificate range are
 * listed first (one GetCapability), so absent templates cost no NV_ReadPublic.
 */
export async function readEkCredentials(tpm: Tpm): Promise<EkCredentials> {
  const defined = await tpm.nvIndices(0x01c00002, EK_CHAIN_LAST);
  const certificates: EkCertificate[] = [];
  const chain: Uint8Array[] = [];
  for (const nvIndex of defined) {
    const slot = EK_CERT_INDEX[nvIndex];
    const inChain = nvIndex >= EK_CHAIN_FIRST;
    if (!slot && !inChain) continue;
    const { data } = await tpm.nvReadAll(nvIndex);
    if (slot) certificates.push({ type: slot.type, nvIndex, template: slot.template, der: trimDer(data, nvIndex) });
    else chain.push(...certificatesInNv(data));
  }
  return { certificates, chain };
}

/** The certificate in an EK certificate index, without the padding or header some TPMs store with it. */
export function trimDer(data: Uint8Array, nvIndex: number): Uint8Array {
  const der = certificateInNv(data);
  if (!der) throw new SextantError({ code: 'TPM_NO_EK_CERT', message: `NV index ${hex(nvIndex)} does not hold a DER certificate` });
  return der;
}

function hex(i: number): string {
  return '0x' + i.toString(16);
}

export function derToPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
