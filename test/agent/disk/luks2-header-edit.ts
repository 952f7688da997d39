import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

/**
 * Test-only: rewrites the JSON area of both LUKS2 header copies and recomputes their
 * checksums, to build headers cryptsetup itself refuses to create on this host (cipher_null
 * needs device-mapper to format). Layout per the LUKS2 on-disk format spec: binary header
 * 4096 bytes (magic, version u16 BE @6, hdr_size u64 BE @8, seqid u64 BE @16, csum_alg @72,
 * csum @448, 64 bytes), JSON area up to hdr_size; the second copy starts at hdr_size.
 * cryptsetup's own luksDump is the oracle that the result is a valid header.
 */
export async function editLuks2Json(file: string, edit: (meta: Record<string, any>) => void): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const first = Buffer.alloc(4096);
    await fh.read(first, 0, 4096, 0);
    if (first.subarray(0, 6).toString('latin1') !== 'LUKS\xba\xbe' || first.readUInt16BE(6) !== 2) throw new Error('not a LUKS2 header');
    const hdrSize = Number(first.readBigUInt64BE(8));
    for (const at of [0, hdrSize]) {
      const hdr = Buffer.alloc(hdrSize);
      await fh.read(hdr, 0, hdrSize, at);
      if (hdr.subarray(72, 78).toString('latin1') !== 'sha256') throw new Error('unexpected checksum algorithm');
      const jsonArea = hdr.subarray(4096);
      const end = jsonArea.indexOf(0);
      const meta = JSON.parse(jsonArea.subarray(0, end).toString('utf8'));
      edit(meta);
      const text = Buffer.from(JSON.stringify(meta), 'utf8');
      if (text.length >= jsonArea.length) throw new Error('edited JSON does not fit');
      jsonArea.fill(0);
      text.copy(jsonArea);
      hdr.writeBigUInt64BE(hdr.readBigUInt64BE(16) + 1n, 16); // newer seqid: cryptsetup prefers it
      hdr.fill(0, 448, 512);
      createHash('sha256').update(hdr).digest().copy(hdr, 448);
      await fh.write(hdr, 0, hdrSize, at);
    }
  } finally {
    await fh.close();
  }
}
