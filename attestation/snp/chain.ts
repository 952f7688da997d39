import { SextantError } from '../../lib/errors.js';
import { RSASSA_PSS, parseAmdCert, productOf, splitCertificates, type AmdCert, type SignerCert } from './certs.js';
import type { AmdProduct, PinnedRoot } from './roots.js';

/**
 * The chain stage: VCEK <- ASK <- ARK, or VLEK <- ASVK <- ARK, every link an RSA-PSS signature
 * that node:crypto checks, the ARK self-signed and pinned by fingerprint. The chain comes from
 * the node or the operator (no party can fetch from AMD here); only the pin decides trust.
 */
export interface VerifiedChain {
  product: AmdProduct;
  ark: AmdCert;
  root: PinnedRoot;
  /** The ASK (for a VCEK) or ASVK (for a VLEK). */
  intermediate: AmdCert;
}

function chainFail(code: 'SNP_CHAIN_MISSING' | 'SNP_ROOT_NOT_PINNED' | 'SNP_CHAIN_INVALID', message: string): never {
  throw new SextantError({ code, message });
}

function signedBy(child: AmdCert, issuer: AmdCert): boolean {
  return child.x509.checkIssued(issuer.x509) && child.x509.verify(issuer.publicKey);
}

export function verifyChain(signer: SignerCert, chainBytes: Uint8Array | undefined, roots: readonly PinnedRoot[]): VerifiedChain {
  if (!chainBytes || chainBytes.length === 0) {
    chainFail('SNP_CHAIN_MISSING', `no ${signer.kind === 'vcek' ? 'ASK' : 'ASVK'} + ARK chain given: the ${signer.kind.toUpperCase()} cannot be traced to a pinned AMD root`);
  }
  const certs = splitCertificates(chainBytes, 'certificate chain').map((d, i) => parseAmdCert(d, `chain certificate ${i}`));
  // Roots by name (issuer = subject); the pin decides, then the self-signature is checked.
  const arks = certs.filter((c) => c.x509.checkIssued(c.x509));
  if (arks.length === 0) chainFail('SNP_CHAIN_MISSING', 'the chain holds no self-issued root (ARK)');
  const pinned = arks
    .map((ark) => ({ ark, root: roots.find((r) => r.sha256 === ark.sha256) }))
    .find((x): x is { ark: AmdCert; root: PinnedRoot } => x.root !== undefined);
  if (!pinned) {
    chainFail('SNP_ROOT_NOT_PINNED', `root "${arks[0].commonName}" (sha256 ${arks[0].sha256}) is not a pinned AMD ARK`);
  }
  const { ark, root } = pinned;
  const product = root.product;
  const wantCn = signer.kind === 'vcek' ? `SEV-${product}` : `SEV-VLEK-${product}`;
  const intermediate = certs.find((c) => c !== ark && c.commonName === wantCn);
  if (!intermediate) chainFail('SNP_CHAIN_INVALID', `the chain has no ${wantCn} certificate (the ${signer.kind === 'vcek' ? 'ASK' : 'ASVK'} for ${product})`);
  if (!intermediate.x509.ca) chainFail('SNP_CHAIN_INVALID', `${wantCn} is not a CA certificate`);
  for (const c of [ark, intermediate, signer]) {
    if (c.signatureAlgorithm !== RSASSA_PSS) chainFail('SNP_CHAIN_INVALID', `"${c.commonName}" is signed with ${c.signatureAlgorithm}, not RSASSA-PSS`);
  }
  if (!signedBy(ark, ark)) chainFail('SNP_CHAIN_INVALID', `${root.commonName} does not verify its own signature`);
  if (!signedBy(intermediate, ark)) chainFail('SNP_CHAIN_INVALID', `${wantCn} is not signed by the pinned ${root.commonName}`);
  if (!signedBy(signer, intermediate)) chainFail('SNP_CHAIN_INVALID', `the ${signer.kind.toUpperCase()} is not signed by ${wantCn}`);
  if (productOf(signer.productName) !== product) {
    chainFail('SNP_CHAIN_INVALID', `the ${signer.kind.toUpperCase()} names product "${signer.productName}", the chain is ${product}'s`);
  }
  return { product, ark, root, intermediate };
}

/** Every certificate must be valid at `at` (recorded evidence is checked at the time it was recorded). */
export function checkValidity(certs: readonly AmdCert[], at: Date): void {
  for (const c of certs) {
    const from = new Date(c.x509.validFrom);
    const to = new Date(c.x509.validTo);
    if (at < from || at > to) {
      throw new SextantError({
        code: 'SNP_CERT_EXPIRED',
        message: `"${c.commonName}" is valid ${from.toISOString()} - ${to.toISOString()}, not at ${at.toISOString()}`,
      });
    }
  }
}
