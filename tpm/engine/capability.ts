/**
 * Decoding of the TPMS_CAPABILITY_DATA arms the engine asks for (Part 2 §10.10.2): handle
 * lists, tagged TPM properties and the PCR allocation.
 */
import { SextantError } from '../../lib/errors.js';

export interface PcrAllocation {
  hashAlg: number;
  /** PCR indices allocated in this bank. */
  pcrs: number[];
}

export type CapabilityData =
  | { kind: 'handles'; handles: number[] }
  | { kind: 'properties'; properties: { property: number; value: number }[] }
  | { kind: 'pcrs'; banks: PcrAllocation[] };

export function decodeCapability(bytes: Uint8Array): CapabilityData {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n: number): void => {
    if (at + n > bytes.length) {
      throw new SextantError({ code: 'TPM_UNMARSHAL', message: `TPMS_CAPABILITY_DATA: truncated at offset ${at}` });
    }
  };
  const u8 = (): number => (need(1), dv.getUint8(at++));
  const u16 = (): number => (need(2), (at += 2), dv.getUint16(at - 2));
  const u32 = (): number => (need(4), (at += 4), dv.getUint32(at - 4));
  const capability = u32();
  const count = u32();
  if (count > 1024) throw new SextantError({ code: 'TPM_UNMARSHAL', message: `TPMS_CAPABILITY_DATA: ${count} entries` });
  switch (capability) {
    case 1:
      return { kind: 'handles', handles: Array.from({ length: count }, u32) };
    case 6:
      return { kind: 'properties', properties: Array.from({ length: count }, () => ({ property: u32(), value: u32() })) };
    case 5: {
      const banks: PcrAllocation[] = [];
      for (let i = 0; i < count; i++) {
        const hashAlg = u16();
        const size = u8();
        const pcrs: number[] = [];
        for (let byte = 0; byte < size; byte++) {
          const bits = u8();
          for (let bit = 0; bit < 8; bit++) if (bits & (1 << bit)) pcrs.push(byte * 8 + bit);
        }
        banks.push({ hashAlg, pcrs });
      }
      return { kind: 'pcrs', banks };
    }
    default:
      throw new SextantError({ code: 'TPM_UNMARSHAL', message: `TPMS_CAPABILITY_DATA: capability ${capability} is not decoded` });
  }
}
