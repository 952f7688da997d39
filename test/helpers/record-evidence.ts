/**
 * Records one real attestation's evidence from a fresh swtpm (EK certificate chain, AK,
 * quote over SHA-256 PCRs 0-15 bound to a fixed nonce and ephemeral key, a matching event
 * log) into test/fixtures/keyservice/evidence.json, for the verifier's unit tests and the
 * benchmark. Run: `node dist/test/helpers/record-evidence.js`.
 */
import { createECDH, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hash, toHex } from '../../lib/bytes.js';
import { qualifyingData } from '../../protocol/seal.js';
import { FIXTURES } from './paths.js';
import { buildEventLog, EV_EVENT_TAG, EV_SEPARATOR, type SynthEvent } from './eventlog.js';
import { startSwtpm } from './swtpm.js';
import { Tpm2ToolsAttester } from './tpm2-tools-attester.js';

export const EVIDENCE_FILE = path.join(FIXTURES, 'keyservice/evidence.json');

export interface RecordedEvidence {
  note: string;
  ekCert: string;
  ekRoot: string;
  ekIssuer: string;
  akPublic: string;
  nonce: string;
  ephemeralPrivateKey: string;
  ephemeralPublicKey: string;
  quoteAttest: string;
  quoteSignature: string;
  pcrs: Record<string, string>;
  eventLog: string;
}

export const RECORDED_EVENTS: SynthEvent[] = [
  { pcr: 4, type: EV_SEPARATOR, data: Buffer.alloc(4) },
  { pcr: 4, type: EV_EVENT_TAG, data: Buffer.from('uki authenticode stand-in') },
  { pcr: 9, type: EV_EVENT_TAG, data: Buffer.from('console=ttyS0 root=/dev/vda2') },
];

export async function loadEvidence(): Promise<RecordedEvidence> {
  return JSON.parse(await readFile(EVIDENCE_FILE, 'utf8')) as RecordedEvidence;
}

async function record(): Promise<void> {
  const sw = await startSwtpm();
  const t = await Tpm2ToolsAttester.create(sw.tcti);
  try {
    for (const e of RECORDED_EVENTS) await t.extendPcr(e.pcr, toHex(hash('sha256', e.data)));
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const nonce = randomBytes(32);
    const ek = await t.ekCertificate();
    const ak = await t.akPublic();
    const q = await t.quote(qualifyingData(nonce, ecdh.getPublicKey()));
    const ev: RecordedEvidence = {
      note: 'real swtpm evidence recorded by test/helpers/record-evidence.ts (tpm2-tools); the ephemeral private key is a test fixture',
      ekCert: Buffer.from(ek).toString('base64'),
      ekRoot: await readFile(sw.caCertPath, 'utf8'),
      ekIssuer: await readFile(sw.issuerCertPath, 'utf8'),
      akPublic: Buffer.from(ak).toString('base64'),
      nonce: nonce.toString('base64'),
      ephemeralPrivateKey: ecdh.getPrivateKey().toString('base64'),
      ephemeralPublicKey: ecdh.getPublicKey().toString('base64'),
      quoteAttest: Buffer.from(q.attest).toString('base64'),
      quoteSignature: Buffer.from(q.signature).toString('base64'),
      pcrs: q.pcrs,
      eventLog: buildEventLog(RECORDED_EVENTS).toString('base64'),
    };
    await writeFile(EVIDENCE_FILE, JSON.stringify(ev, null, 2) + '\n');
  } finally {
    await t.dispose();
    await sw.stop();
  }
}

if (process.argv[1]?.endsWith('record-evidence.js')) await record();
