/**
 * The DER certificates in what an EK certificate NV index holds. TPMs store more than the
 * certificate: zero or 0xFF padding up to the index's size, and some (TPM 1.2-era
 * provisioning, TCG PC Client Specific Implementation Specification 1.2 §7.3.2) a header
 * `10 01 00 <u16 length>` before it, which go-attestation's ParseEKCertificate also strips.
 * A certificate is its outer SEQUENCE, with its length as encoded (DER or not: node:crypto
 * parses non-minimal lengths, and the signature covers the bytes as stored).
 */

/** The length of the SEQUENCE at the start of `d` (header included), or undefined. */
function sequenceLength(d: Uint8Array): number | undefined {
  if (d.length < 2 || d[0] !== 0x30) return undefined;
  let length = d[1];
  let header = 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n < 1 || n > 3 || d.length < 2 + n) return undefined;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + d[2 + i];
    header += n;
  }
  return header + length <= d.length ? header + length : undefined;
}

/** The EK certificate in an EK certificate index, or undefined when it holds none. */
export function certificateInNv(data: Uint8Array): Uint8Array | undefined {
  let d = data;
  if (d.length > 5 && d[0] === 0x10 && d[1] === 0x01 && d[2] === 0x00) {
    const n = (d[3] << 8) | d[4];
    if (d.length < 5 + n) return undefined;
    d = d.subarray(5, 5 + n);
  }
  const n = sequenceLength(d);
  return n === undefined ? undefined : d.slice(0, n);
}

/** Every certificate in a chain index (EK Credential Profile 2.x: back to back, then padding). */
export function certificatesInNv(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (let n = sequenceLength(data); n !== undefined && out.length < 16; n = sequenceLength(data.subarray(at))) {
    out.push(data.slice(at, at + n));
    at += n;
  }
  return out;
}
