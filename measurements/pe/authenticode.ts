import { createHash } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';
import type { HashAlg } from '../../lib/bytes.js';
import { parsePe, type PeImage } from './parse.js';

/** A half-open file range [start, end). */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The file ranges the Authenticode digest covers, in hashing order (Microsoft "Windows
 * Authenticode Portable Executable Signature Format", and EDK2's Tcg2MeasurePeImage, which is
 * what firmware extends into PCR 4): the headers without the CheckSum field and the
 * certificate-table directory entry, the sections with raw data sorted by PointerToRawData,
 * then whatever follows them up to the certificate table.
 */
export function authenticodeRanges(pe: PeImage): ByteRange[] {
  const ranges: ByteRange[] = [{ start: 0, end: pe.checkSumOffset }];
  if (pe.certificateDirectoryOffset === undefined) {
    ranges.push({ start: pe.checkSumOffset + 4, end: pe.sizeOfHeaders });
  } else {
    ranges.push({ start: pe.checkSumOffset + 4, end: pe.certificateDirectoryOffset });
    ranges.push({ start: pe.certificateDirectoryOffset + 8, end: pe.sizeOfHeaders });
  }
  let sumOfBytesHashed = pe.sizeOfHeaders;
  const withData = pe.sections
    .map((s, i) => ({ s, i }))
    .filter(({ s }) => s.sizeOfRawData > 0)
    // stable: equal offsets keep section-table order, as EDK2's insertion sort does
    .sort((a, b) => a.s.pointerToRawData - b.s.pointerToRawData || a.i - b.i);
  for (const { s } of withData) {
    ranges.push({ start: s.pointerToRawData, end: s.pointerToRawData + s.sizeOfRawData });
    sumOfBytesHashed += s.sizeOfRawData;
  }
  if (pe.fileSize > sumOfBytesHashed) {
    const certSize = pe.certificateTable?.size ?? 0;
    if (pe.fileSize < sumOfBytesHashed + certSize) {
      throw new SextantError({
        code: 'PE_MALFORMED',
        message: `headers + sections (${sumOfBytesHashed} bytes) + certificate table (${certSize}) exceed the file size ${pe.fileSize}`,
      });
    }
    ranges.push({ start: sumOfBytesHashed, end: pe.fileSize - certSize });
  }
  return ranges.filter((r) => r.end > r.start);
}

/** Streams `ranges` of `bytes` through one hash. */
export function hashRanges(alg: HashAlg, bytes: Uint8Array, ranges: readonly ByteRange[]): Buffer {
  const h = createHash(alg);
  for (const r of ranges) h.update(bytes.subarray(r.start, r.end));
  return h.digest();
}

/** The Authenticode (PE image) digest of a PE file, as `pesign -h` and firmware compute it. */
export function authenticodeDigest(bytes: Uint8Array, alg: HashAlg = 'sha256', pe: PeImage = parsePe(bytes)): Buffer {
  return hashRanges(alg, bytes, authenticodeRanges(pe));
}
