import { SextantError, isSextantError } from '../../lib/errors.js';
import { marshal } from '../../tpm/codec.js';
import { TPMT_PUBLIC } from '../../tpm/structures.js';
import { quotePcrs } from '../../tpm/client/attest.js';
import { EK_CERT_INDICES, readEkCredentials, type EkType } from '../../tpm/client/ek-cert.js';
import { Tpm } from '../../tpm/client/tpm.js';
import type { AttestationTpm } from './tpm.js';
import type { HclNv } from '../snp/hcl.js';

const QUOTED = { sha256: Array.from({ length: 16 }, (_, i) => i) };

/**
 * An AttestationTpm through the TPM client (tpm/client over the koffi -> TCTI transport): the
 * agent's, and the key service's own for mutual attestation. The AK is sextant's deterministic
 * owner-hierarchy primary (withAk): every call recreates the same key and flushes it, so
 * nothing is left loaded between the rounds. The EK is the one whose certificate is in NV
 * (RSA 2048 preferred, else ECC).
 */
export class EngineAttestationTpm implements AttestationTpm {
  private ekType?: EkType;
  private ekCert?: Uint8Array;
  private ekChainCerts: Uint8Array[] = [];

  private constructor(private readonly tpm: Tpm) {}

  static async open(tcti: string, log?: (line: string) => void): Promise<EngineAttestationTpm> {
    return new EngineAttestationTpm(await Tpm.open({ tcti, log }));
  }

  /**
   * The certificate of the EK this agent uses (RSA 2048 preferred, else ECC, each low range
   * first: EK_CERT_INDICES), read together with the chain indices in one pass over NV.
   */
  async ekCertificate(): Promise<Uint8Array> {
    if (this.ekCert) return this.ekCert;
    const { certificates, chain } = await readEkCredentials(this.tpm);
    for (const type of ['rsa', 'ecc'] as const) {
      const c = EK_CERT_INDICES[type].map((i) => certificates.find((x) => x.nvIndex === i)).find((x) => x !== undefined);
      if (!c) continue;
      this.ekType = type;
      this.ekCert = c.der;
      this.ekChainCerts = chain;
      return c.der;
    }
    throw new SextantError({
      code: 'TPM_NO_EK_CERT',
      message: `the TPM holds no EK certificate in NV (${certificates.length ? `only for templates ${certificates.map((c) => c.template).join(', ')}` : 'no EK certificate index is defined'}): many firmware TPMs have none; see docs/tpm.md, "A TPM without an EK certificate"`,
    });
  }

  async ekChain(): Promise<Uint8Array[]> {
    await this.ekCertificate();
    return this.ekChainCerts;
  }

  /** The L-1 RSA 2048 EK's TPMT_PUBLIC: what a TPM without an EK certificate sends instead. */
  async ekPublic(): Promise<Uint8Array> {
    return this.tpm.withEk('rsa', async (ek) => ek.public.raw ?? marshal(TPMT_PUBLIC, ek.public.value));
  }

  /** The EK type to use: the certificate's, else (no certificate: an enrolled or aws-sev-snp EK) RSA. */
  private async ekKind(): Promise<EkType> {
    if (!this.ekType) {
      try {
        await this.ekCertificate();
      } catch (e) {
        if (!isSextantError(e, 'TPM_NO_EK_CERT')) throw e;
        this.ekType = 'rsa';
      }
    }
    return this.ekType!;
  }

  async akPublic(): Promise<Uint8Array> {
    return this.tpm.withAk(async (ak) => ak.public.raw ?? marshal(TPMT_PUBLIC, ak.public.value));
  }

  async activateCredential(credentialBlob: Uint8Array, encryptedSecret: Uint8Array): Promise<Uint8Array> {
    // The session that carries the credential back is salted to the certificate's key (without one, to the loaded EK's).
    return this.tpm.withEkAndAk(await this.ekKind(), (ek, ak) =>
      this.tpm.activateCredential({ activate: ak, ek, ekCertificate: this.ekCert, credentialBlob, encryptedSecret }),
    );
  }

  async quote(qualifyingData: Uint8Array): Promise<{ attest: Uint8Array; signature: Uint8Array; pcrs: Record<string, string> }> {
    const q = await quotePcrs(this.tpm, { qualifyingData, pcrs: QUOTED });
    return { attest: q.attest, signature: q.signature, pcrs: q.pcrs.sha256 ?? {} };
  }

  /** PCR 15 for the agent's cluster lock (agent/boot/cluster-lock.ts PcrLockTpm). */
  async readPcrSha256(index: number): Promise<Uint8Array> {
    const banks = await this.tpm.pcrRead({ sha256: [index] });
    const v = banks.sha256?.[String(index)];
    if (!v) throw new SextantError({ code: 'TPM_UNAVAILABLE', message: `the TPM has no SHA-256 PCR ${index}` });
    return Buffer.from(v, 'hex');
  }

  /** The event data (the cluster ID) crosses the TPM bus encrypted, in a session salted to the EK. */
  async pcrEvent(index: number, data: Uint8Array): Promise<void> {
    await this.tpm.pcrEventProtected(index, data, { kind: await this.ekKind(), certificate: this.ekCert });
  }

  /** The vTPM NV access azure-sev-snp needs (agent/attest/snp-evidence.ts azureHclSource). */
  hclNv(): HclNv {
    return { nvWrite: (i, d) => this.tpm.nvWrite(i, d), nvReadAll: (i) => this.tpm.nvReadAll(i) };
  }

  async dispose(): Promise<void> {
    await this.tpm.close();
  }
}
