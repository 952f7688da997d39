/**
 * The key service configuration file the agent-run integration tests start `sextant keyservice
 * --config` with: PCRs 4 and 9 expected zero (a swtpm nobody extended), the swtpm's EK CA, a
 * cluster CA for join tickets; `extra` adds keys (an attestation variant).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeClusterCa } from './cluster-ca.js';
import { measurementsKeys, writeSignedMeasurements } from './keyservice-fixture.js';
import type { Swtpm } from './swtpm.js';

export async function writeAgentRunKeyServiceConfig(dir: string, tpm: Swtpm, extra: Record<string, unknown> = {}): Promise<{ config: string; stateDir: string }> {
  const stateDir = path.join(dir, 'state');
  const keys = await measurementsKeys(dir);
  const measurements = path.join(dir, 'measurements.json');
  const zero = '00'.repeat(32);
  await writeSignedMeasurements(measurements, keys.keyPem, { '4': { expected: zero, enforced: true }, '9': { expected: zero, enforced: true } });
  const ca = await makeClusterCa(dir);
  const config = path.join(dir, 'keyservice.json');
  await writeFile(
    config,
    JSON.stringify({
      stateDir,
      measurements,
      measurementsKey: keys.pubPem,
      ekCa: [tpm.caCertPath, tpm.issuerCertPath],
      join: { apiServerEndpoint: '10.0.0.1:6443', caCert: ca.caCert, caKey: ca.caKey, tokenTtlSeconds: 600, certDays: 1 },
      ...extra,
    }),
  );
  return { config, stateDir };
}
