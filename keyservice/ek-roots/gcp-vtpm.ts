import type { EkRootStore } from './store.js';

/**
 * Google's CAs for the EK (and AK) certificates of Compute Engine vTPMs (Shielded VMs,
 * Confidential VMs: what gcp-sev-snp nodes present), pinned by SHA-256 of the DER
 * certificate. Provenance: google/go-tpm-tools commit 67670e5c, server/ca-certs/ (the roots
 * its verifier embeds); Debian's golang-github-google-go-tpm-tools-dev does not ship these
 * files, so an operator points --ek-ca-store-dir at a directory holding them.
 */
export const GCP_VTPM: EkRootStore = {
  name: 'gcp-vtpm',
  version: '2026-12-04',
  description: 'Google Compute Engine vTPM EK/AK CAs (tpm_ek_v1_cloud_host root and intermediates, EK/AK CA Root and Intermediate v3)',
  defaultDirs: [],
  certificates: [
  { vendor: "Google", role: 'root', subject: "C=US, ST=California, L=Mountain View, O=Google LLC, OU=Cloud, CN=tpm_ek_v1_cloud_host_root-signer-0-2018-04-06T10:58:26-07:00 K:1\\, 1:Pw003HsFYO4:0:18", notAfter: '2118-04-06T18:58:26Z',
    sha256: '9bd5285f8fb18502a7947e621ffd470266f49fcd3b73e19a190f690ad32a7caf',
    sources: ["github:google/go-tpm-tools@67670e5c server/ca-certs/tpm_ek_root_1.cer"] },
  { vendor: "Google", role: 'root', subject: "C=US, ST=California, L=Mountain View, O=Google LLC, OU=Google Cloud, CN=EK/AK CA Root", notAfter: '2122-07-08T05:57:23Z',
    sha256: '594759594b9b61524f6c8ef668f7177f7b9066bc0674f2f49fe9e052be78beb2',
    sources: ["github:google/go-tpm-tools@67670e5c server/ca-certs/gcp_ek_ak_ca_root.crt"] },
  { vendor: "Google", role: 'intermediate', subject: "C=US, ST=California, L=Mountain View, O=Google LLC, OU=Cloud, CN=tpm_ek_v1_cloud_host-signer-0-2020-10-22T14:02:08-07:00 K:1\\, 2:HBNpA3TPAbM:0:18", notAfter: '2120-10-22T21:02:08Z',
    sha256: '5d8dbcf8c8053dd8ffad711b6219355032b7122c34cac0f90ccb49def69ec504',
    sources: ["github:google/go-tpm-tools@67670e5c server/ca-certs/tpm_ek_intermediate_2.crt"] },
  { vendor: "Google", role: 'intermediate', subject: "C=US, ST=California, L=Mountain View, O=Google LLC, OU=Cloud, CN=tpm_ek_v1_cloud_host-signer-0-2021-10-12T04:22:11-07:00 K:1\\, 3:nbvaGZFLcuc:0:18", notAfter: '2121-10-12T11:22:11Z',
    sha256: '7132b6ea71101f6c51bb58f98c3798c19b65be510eca0344318900510b593178',
    sources: ["github:google/go-tpm-tools@67670e5c server/ca-certs/tpm_ek_intermediate_3.crt"] },
  { vendor: "Google", role: 'intermediate', subject: "C=US, ST=California, L=Mountain View, O=Google LLC, OU=Google Cloud, CN=EK/AK CA Intermediate", notAfter: '2122-07-08T05:57:23Z',
    sha256: 'c84de8116dfaf5a908f21e810487791f5437e206d00ad8025050cca6bd2ff627',
    sources: ["github:google/go-tpm-tools@67670e5c server/ca-certs/gcp_ek_ak_ca_intermediate_v3.crt"] },  ],
};
