import test from 'ava';
import { resolveConfig } from '../../../keyservice/config.js';
import { assertCompleteRequest } from '../../../protocol/validate.js';
import { sampleComplete } from '../../helpers/protocol-samples.js';

const base = { stateDir: '/s', measurements: '/m', measurementsKey: '/k', ekCa: ['/ca'] };

test('attestation.variant: qemu-vtpm by default; the SNP variants by name; anything else, an snp policy without a variant, unknown keys refuse', (t) => {
  t.is(resolveConfig({}, base).attestation, undefined);
  t.is(resolveConfig({ attestation: {} }, base).attestation?.variant, 'qemu-vtpm');
  for (const v of ['azure-sev-snp', 'aws-sev-snp', 'gcp-sev-snp'] as const) t.is(resolveConfig({ attestation: { variant: v } }, base).attestation?.variant, v);
  const bad = (a: unknown) => t.throws(() => resolveConfig({ attestation: a as never }, base), { code: 'CONFIG_INVALID' });
  bad({ variant: 'tdx' });
  bad({ snp: {} });
  bad({ variant: 'aws-sev-snp', snp: { measurement: [] } });
  bad({ variant: 'aws-sev-snp', snp: { minTcb: { snp: 300 } } });
  bad({ variant: 'aws-sev-snp', snp: { measurements: ['ab'] } });
  bad({ variant: 'aws-sev-snp', snp: { testOnlyRoot: { cert: '/r.pem', product: 'Rome' } } });
  bad({ variant: 'aws-sev-snp', extra: 1 });
  // Mutual attestation still needs only its TCTI.
  t.is(resolveConfig({ attestation: { tcti: 'swtpm:port=1' } }, base).attestation?.tcti, 'swtpm:port=1');
});

test('round 2 snp evidence: closed and bounded', (t) => {
  const req = sampleComplete();
  const cert = Buffer.alloc(100, 1).toString('base64');
  const snp = { report: Buffer.alloc(1184).toString('base64'), vcek: cert };
  t.notThrows(() => assertCompleteRequest({ ...req, snp }));
  t.notThrows(() => assertCompleteRequest({ ...req, snp: { ...snp, chain: [cert, cert], runtimeData: 'e30=' } }));
  for (const s of [{ ...snp, extra: 'x' }, { ...snp, report: Buffer.alloc(100).toString('base64') }, { ...snp, report: Buffer.alloc(17 * 1024).toString('base64') }, { report: snp.report }, { ...snp, chain: [cert, cert, cert, cert, cert] }]) {
    t.throws(() => assertCompleteRequest({ ...req, snp: s }), { code: 'PROTOCOL_INVALID' });
  }
});
