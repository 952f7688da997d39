/**
 * The client's loops against recorded swtpm answers (test/fixtures/tpm/client-replay.json,
 * made by scripts/tpm/record-client-fixture.mjs): PCR_Read asked again until every PCR of two
 * banks came back, GetCapability, the EK certificate read from NV in 512-byte chunks. No TPM
 * needed; a change in what the client sends fails the replay.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { getCapability } from '../../tpm/client/capability.js';
import { trimDer } from '../../tpm/client/ek-cert.js';
import { nvRead, nvReadPublic } from '../../tpm/client/nv.js';
import { pcrRead } from '../../tpm/client/pcrs.js';
import { TPM_CAP, TPM_PT } from '../../tpm/constants.js';
import { ReplayTransport, type RecordedExchange } from '../../tpm/engine/record.js';
import { REPO_ROOT } from '../helpers/paths.js';

type Fixture = Record<'pcrRead' | 'properties' | 'ekCertificate', RecordedExchange[]>;
const fixture: Fixture = JSON.parse(await readFile(path.join(REPO_ROOT, 'test/fixtures/tpm/client-replay.json'), 'utf8'));
const all = Array.from({ length: 24 }, (_, i) => i);

test('PCR_Read is repeated until all 48 PCRs of two banks came back (8 per response)', async (t) => {
  const replay = new ReplayTransport(fixture.pcrRead);
  const banks = await pcrRead(replay, { sha1: all, sha256: all });
  t.true(replay.done);
  t.is(fixture.pcrRead.length, 6, '48 PCRs, 8 per response');
  t.deepEqual(Object.keys(banks.sha256!).map(Number), all);
  t.is(banks.sha1!['0'], '0'.repeat(40), 'swtpm starts PCR 0 at zero');
  t.is(banks.sha256!['17'], 'f'.repeat(64), 'PCRs 17-22 start at all ones');
});

test('GetCapability stops once it has the properties asked for', async (t) => {
  const replay = new ReplayTransport(fixture.properties);
  const pages = await getCapability(replay, TPM_CAP.TPM_PROPERTIES, TPM_PT.NV_BUFFER_MAX, 1);
  t.true(replay.done);
  t.is(pages.length, 1);
  const p = pages[0].capability === TPM_CAP.TPM_PROPERTIES ? pages[0].tpmProperties[0] : undefined;
  t.is(p?.property, TPM_PT.NV_BUFFER_MAX);
});

test('the EK certificate is read in 512-byte chunks and is a certificate', async (t) => {
  const replay = new ReplayTransport(fixture.ekCertificate);
  const pub = await nvReadPublic(replay, 0x01c00002);
  const data = await nvRead(replay, 0x01c00002, pub.dataSize, 512);
  t.true(replay.done);
  t.is(fixture.ekCertificate.length, 1 + Math.ceil(pub.dataSize / 512));
  const cert = new X509Certificate(Buffer.from(trimDer(data, 0x01c00002)));
  t.is(cert.publicKey.asymmetricKeyType, 'rsa');
});

test('a command that differs from the recording is refused, not answered', async (t) => {
  const replay = new ReplayTransport(fixture.ekCertificate);
  await t.throwsAsync(nvReadPublic(replay, 0x01c0000a), { code: 'INTERNAL' });
  const short = new ReplayTransport(fixture.ekCertificate.slice(0, 1));
  const pub = await nvReadPublic(short, 0x01c00002);
  await t.throwsAsync(nvRead(short, 0x01c00002, pub.dataSize, 512), { code: 'INTERNAL' });
});
