/**
 * One swtpm (driven by tpm2-tools), and a key service in this process on real HTTPS that
 * trusts its EK CA and expects a fresh swtpm's PCR 4 and 9 (zero), enforced.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startSwtpm, type Swtpm } from './swtpm.js';
import { Tpm2ToolsAttester } from './tpm2-tools-attester.js';
import { measurementsKeys, writeSignedMeasurements } from './keyservice-fixture.js';
import { startKeyService, type RunningKeyService } from '../../keyservice/service.js';
import { resolveConfig, type KeyServiceConfig } from '../../keyservice/config.js';
import type { PinnedEndpoint } from '../../agent/attest/transport.js';

export interface SwtpmKeyService {
  dir: string;
  tpm: Swtpm;
  ta: Tpm2ToolsAttester;
  svc: RunningKeyService;
  ep: PinnedEndpoint;
  stop(): Promise<void>;
}

/** `extra(dir)` adds configuration (e.g. a join section with files it writes into dir). */
export async function startSwtpmKeyService(prefix: string, extra: (dir: string) => Promise<Partial<KeyServiceConfig>> = async () => ({})): Promise<SwtpmKeyService> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  const tpm = await startSwtpm();
  const ta = await Tpm2ToolsAttester.create(tpm.tcti);
  const keys = await measurementsKeys(dir);
  const measurements = path.join(dir, 'measurements.json');
  const zero = '00'.repeat(32);
  await writeSignedMeasurements(measurements, keys.keyPem, { '4': { expected: zero, enforced: true }, '9': { expected: zero, enforced: true } });
  const base: Partial<KeyServiceConfig> = { listen: '127.0.0.1:0', stateDir: path.join(dir, 'state'), measurements, measurementsKey: keys.pubPem, ekCa: [tpm.caCertPath, tpm.issuerCertPath], rateLimit: { burst: 1000, perSecond: 100 } };
  const svc = await startKeyService(resolveConfig({}, { ...base, ...(await extra(dir)) }));
  return {
    dir,
    tpm,
    ta,
    svc,
    ep: { url: svc.url, fingerprint: svc.fingerprint },
    stop: async () => {
      await svc.close();
      await ta.dispose();
      await tpm.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
