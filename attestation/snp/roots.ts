/**
 * AMD's root keys (ARK), pinned by the SHA-256 fingerprint of the DER certificate. The ARK is
 * self-signed and signs the ASK (VCEK intermediate) and the ASVK (VLEK intermediate) of its
 * product line; each VCEK/VLEK chain must end in one of these. The certificates themselves
 * are not in the repository: the node or the operator supplies the chain (AMD KDS
 * `https://kdsintf.amd.com/vcek/v1/<Product>/cert_chain`, or `.../vlek/v1/<Product>/cert_chain`)
 * and the verifier accepts it only if its root's fingerprint is pinned here.
 *
 * Provenance: each fingerprint was computed from the ARK certificates Debian ships in
 * librust-sev-dev 8.0.0-1 (sid), src/certs/snp/builtin/<product>/ark.pem (virtee/sev's copies
 * of AMD KDS's cert_chain). The Milan ARK is the same certificate that
 * golang-github-google-go-sev-guest-dev 0.15.0-1 ships in verify/testdata/milan.testcer and
 * milanvlek.testcer (the VCEK and the VLEK chains share one ARK). test/attestation/snp/roots.test.ts
 * recomputes every fingerprint from those Debian files.
 */
export type AmdProduct = 'Milan' | 'Genoa' | 'Turin';

export interface PinnedRoot {
  product: AmdProduct;
  /** The ARK's subject common name. */
  commonName: string;
  /** SHA-256 of the DER certificate, lowercase hex. */
  sha256: string;
  notAfter: string;
  provenance: string;
}

const DEBIAN_SEV = 'Debian librust-sev-dev 8.0.0-1, src/certs/snp/builtin';

export const PINNED_AMD_ROOTS: readonly PinnedRoot[] = [
  {
    product: 'Milan',
    commonName: 'ARK-Milan',
    sha256: '69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd',
    notAfter: '2045-10-22T17:23:05Z',
    provenance: `${DEBIAN_SEV}/milan/ark.pem; = ARK in golang-github-google-go-sev-guest-dev 0.15.0-1 verify/testdata/milan.testcer`,
  },
  {
    product: 'Genoa',
    commonName: 'ARK-Genoa',
    sha256: '4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1',
    notAfter: '2047-01-26T15:34:37Z',
    provenance: `${DEBIAN_SEV}/genoa/ark.pem`,
  },
  {
    product: 'Turin',
    commonName: 'ARK-Turin',
    sha256: '1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a',
    notAfter: '2048-05-15T20:03:12Z',
    provenance: `${DEBIAN_SEV}/turin/ark.pem`,
  },
];
