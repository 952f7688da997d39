#!/usr/bin/env node
// Records the command/response pairs of a few client operations on a fresh swtpm into
// test/fixtures/tpm/client-replay.json (test/tpm/client-replay.test.ts replays them).
// Run after `npm run build`: node scripts/tpm/record-client-fixture.mjs
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dist = (p) => import(path.join(root, 'dist', p));
const { startSwtpm } = await dist('test/helpers/swtpm.js');
const { connectSwtpm } = await dist('test/helpers/tpm-socket.js');
const { RecordingTransport } = await dist('tpm/engine/record.js');
const { getCapability } = await dist('tpm/client/capability.js');
const { pcrRead } = await dist('tpm/client/pcrs.js');
const { nvRead, nvReadPublic } = await dist('tpm/client/nv.js');
const { TPM_CAP, TPM_PT } = await dist('tpm/constants.js');

const swtpm = await startSwtpm();
const socket = await connectSwtpm(swtpm.port);
try {
  const record = async (ops) => {
    const t = new RecordingTransport(socket);
    await ops(t);
    return t.exchanges;
  };
  const all = Array.from({ length: 24 }, (_, i) => i);
  const fixture = {
    provenance: 'recorded by scripts/tpm/record-client-fixture.mjs on a fresh swtpm (swtpm_setup --create-ek-cert, sha1+sha256 banks)',
    pcrRead: await record((t) => pcrRead(t, { sha1: all, sha256: all })),
    properties: await record((t) => getCapability(t, TPM_CAP.TPM_PROPERTIES, TPM_PT.NV_BUFFER_MAX, 1)),
    ekCertificate: await record(async (t) => {
      const pub = await nvReadPublic(t, 0x01c00002);
      await nvRead(t, 0x01c00002, pub.dataSize, 512);
    }),
  };
  await writeFile(path.join(root, 'test/fixtures/tpm/client-replay.json'), JSON.stringify(fixture, null, 1) + '\n');
} finally {
  socket.close();
  await swtpm.stop();
}
