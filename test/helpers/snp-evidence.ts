import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { debianPackage, goSource } from './debian-package.js';

/**
 * Real SEV-SNP evidence recorded on real AMD machines, as Debian ships it in the upstream
 * test data of two packages (nothing of it is committed here):
 * - golang-github-google-go-sev-guest-dev (google/go-sev-guest), verify/testdata: attestation.bin
 *   (a Milan VM launched without an ID block, debug allowed), vcek.testcer (its VCEK from AMD KDS),
 *   milan.testcer (ASK + ARK), milanvlek.testcer (ASVK + ARK). Upstream's TestRealAttestationVerification
 *   verifies that report against that VCEK at the current time (the VCEK is valid until 2029-09-24).
 * - librust-sev-dev (virtee/sev), tests/certs_data: report_milan.hex with vcek_milan.der and
 *   cert_chain_milan (upstream's milan_report test), vcek_turin.der with cert_chain_turin, and
 *   src/certs/snp/builtin/{milan,genoa,turin}/{ark,ask}.pem.
 */
export interface SnpEvidenceSet {
  goSev: { report: Buffer; vcek: Buffer; chain: Buffer; vlekChain: Buffer };
  virtee: { report: Buffer; vcek: Buffer; chain: Buffer; turinVcek: Buffer; turinChain: Buffer; builtin: (product: string, cert: 'ark' | 'ask') => Promise<Buffer> };
}

let cached: Promise<SnpEvidenceSet> | undefined;

export function snpEvidence(): Promise<SnpEvidenceSet> {
  cached ??= load();
  return cached;
}

async function load(): Promise<SnpEvidenceSet> {
  const go = path.join(goSource(await debianPackage('sid', 'golang-github-google-go-sev-guest-dev'), 'github.com/google/go-sev-guest'), 'verify/testdata');
  const rustRoot = path.join(await debianPackage('sid', 'librust-sev-dev'), 'usr/share/cargo/registry');
  const crate = (await readdir(rustRoot)).find((d) => d.startsWith('sev-'));
  if (!crate) throw new Error(`librust-sev-dev: no sev-* crate under ${rustRoot}`);
  const rs = path.join(rustRoot, crate);
  const data = (f: string): Promise<Buffer> => readFile(path.join(rs, 'tests/certs_data', f));
  return {
    goSev: {
      report: await readFile(path.join(go, 'attestation.bin')),
      vcek: await readFile(path.join(go, 'vcek.testcer')),
      chain: await readFile(path.join(go, 'milan.testcer')),
      vlekChain: await readFile(path.join(go, 'milanvlek.testcer')),
    },
    virtee: {
      report: Buffer.from((await data('report_milan.hex')).toString('latin1').trim(), 'hex'),
      vcek: await data('vcek_milan.der'),
      chain: await data('cert_chain_milan'),
      turinVcek: await data('vcek_turin.der'),
      turinChain: await data('cert_chain_turin'),
      builtin: (product, cert) => readFile(path.join(rs, 'src/certs/snp/builtin', product, `${cert}.pem`)),
    },
  };
}
