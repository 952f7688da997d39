/**
 * Real TPM certificates and TPM vendor CAs from Debian packages (sid), read at test time
 * (nothing from them is committed):
 *
 * - ruby-tpm-key-attestation 0.14.2-1: the EK CAs of AMD, Atmel, Infineon, Intel, Nationz,
 *   Nuvoton, STMicroelectronics (GlobalSign, VeriSign roots) and Microsoft's TPM root, as
 *   files under lib/tpm/certificates/<Vendor>/RootCA/.
 * - golang-github-go-webauthn-webauthn-dev (protocol/attestation_tpm_test.go) and
 *   librust-webauthn-rs-core-dev (src/core.rs): WebAuthn TPM attestations recorded from
 *   Windows machines, whose x5c holds a certificate Microsoft issued for a real TPM (a
 *   Nuvoton NPCT75x, firmware 7.2, named in its SAN like an EK certificate) and the
 *   EUS-NTC-KEYID-... intermediate under Microsoft TPM Root Certificate Authority 2014. They
 *   sit inside base64url CBOR, so the DER certificates are found by their structure.
 */
import { X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { debianPackage } from './debian-package.js';

export const TPM_KEY_ATTESTATION_CERTS = 'usr/share/rubygems-integration/all/gems/tpm-key_attestation-0.14.2/lib/tpm/certificates';

/** The directory of ruby-tpm-key-attestation's vendor CA files, and each file (path relative to it) with its certificate. */
export async function vendorCaFiles(): Promise<{ dir: string; files: { rel: string; cert: X509Certificate }[] }> {
  const dir = path.join(await debianPackage('sid', 'ruby-tpm-key-attestation'), TPM_KEY_ATTESTATION_CERTS);
  const files: { rel: string; cert: X509Certificate }[] = [];
  for (const vendor of (await readdir(dir)).sort()) {
    for (const f of (await readdir(path.join(dir, vendor, 'RootCA'))).sort()) {
      const rel = `${vendor}/RootCA/${f}`;
      files.push({ rel, cert: new X509Certificate(await readFile(path.join(dir, rel))) });
    }
  }
  return { dir, files };
}

export interface RecordedTpmChain {
  source: string;
  /** The certificate issued for the TPM (empty subject, TPM identity in a critical SAN). */
  leaf: X509Certificate;
  intermediate: X509Certificate;
}

const WEBAUTHN_SOURCES = [
  { pkg: 'golang-github-go-webauthn-webauthn-dev', file: 'usr/share/gocode/src/github.com/go-webauthn/webauthn/protocol/attestation_tpm_test.go' },
  { pkg: 'librust-webauthn-rs-core-dev', file: 'usr/share/cargo/registry/webauthn-rs-core-0.5.5/src/core.rs' },
];

/** The Microsoft-issued TPM certificate chains in the two WebAuthn packages (one distinct chain each). */
export async function microsoftTpmChains(microsoftRoot: X509Certificate): Promise<RecordedTpmChain[]> {
  const out: RecordedTpmChain[] = [];
  for (const { pkg, file } of WEBAUTHN_SOURCES) {
    const text = await readFile(path.join(await debianPackage('sid', pkg), file), 'latin1');
    const certs = embeddedCertificates(text);
    const intermediate = certs.find((c) => c.ca && c.checkIssued(microsoftRoot));
    const leaf = intermediate && certs.find((c) => !c.ca && c.checkIssued(intermediate));
    if (!intermediate || !leaf) throw new Error(`${pkg}: no Microsoft TPM chain found in ${file}`);
    out.push({ source: `Debian sid ${pkg} ${path.basename(file)}`, leaf, intermediate });
  }
  return out;
}

/** DER certificates inside base64 / base64url runs of `text` (at any offset of the decoded bytes), deduplicated. */
function embeddedCertificates(text: string): X509Certificate[] {
  const seen = new Map<string, X509Certificate>();
  for (const m of text.matchAll(/[A-Za-z0-9+/_-]{400,}/g)) {
    const d = Buffer.from(m[0].replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    for (let i = d.indexOf(0x30); i >= 0 && i < d.length - 8; i = d.indexOf(0x30, i + 1)) {
      if (d[i + 1] !== 0x82 || d[i + 4] !== 0x30 || d[i + 5] !== 0x82) continue;
      const len = d.readUInt16BE(i + 2) + 4;
      if (i + len > d.length) continue;
      try {
        const c = new X509Certificate(d.subarray(i, i + len));
        seen.set(c.fingerprint256, c);
      } catch {
        // bytes that only look like a certificate header
      }
    }
  }
  return [...seen.values()];
}
