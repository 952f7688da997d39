import { SextantError } from '../lib/errors.js';
import type { ServiceActivateRequest, ServiceActivateResponse, ServiceAttestRequest, ServiceAttestResponse } from '../protocol/messages.js';
import { serviceQualifyingData } from '../protocol/seal.js';

/**
 * The key service's own attestation (mutual attestation, off unless a TPM is configured):
 * a quote of its SHA-256 PCRs 0-15 over the agent's nonce and the SHA-256 of its TLS
 * certificate, its EK certificate and AK public; and TPM2_ActivateCredential for the agent's
 * challenge, which proves the AK lives in the TPM of that EK. Activation needs no session:
 * it only ever opens credentials made for this AK, which is exactly what it proves.
 */

/** The TPM operations this needs (the agent's engine-backed AttestationTpm has this shape). */
export interface ServiceTpm {
  ekCertificate(): Promise<Uint8Array>;
  akPublic(): Promise<Uint8Array>;
  activateCredential(credentialBlob: Uint8Array, encryptedSecret: Uint8Array): Promise<Uint8Array>;
  quote(qualifyingData: Uint8Array): Promise<{ attest: Uint8Array; signature: Uint8Array; pcrs: Record<string, string> }>;
  dispose(): Promise<void>;
}

export class ServiceSelfAttestation {
  private constructor(
    private readonly tpm: ServiceTpm,
    private readonly tlsCertSha256: Buffer,
    private readonly ekCert: string,
    private readonly akPublic: string,
    private readonly ekChain?: string[],
  ) {}

  /** Reads the EK certificate and AK once; `fingerprint` is the service's `sha256:<hex>`. */
  static async open(tpm: ServiceTpm, fingerprint: string, ekChainDer: Uint8Array[] = []): Promise<ServiceSelfAttestation> {
    const ek = Buffer.from(await tpm.ekCertificate()).toString('base64');
    const ak = Buffer.from(await tpm.akPublic()).toString('base64');
    const chain = ekChainDer.length ? ekChainDer.map((d) => Buffer.from(d).toString('base64')) : undefined;
    return new ServiceSelfAttestation(tpm, Buffer.from(fingerprint.replace(/^sha256:/, ''), 'hex'), ek, ak, chain);
  }

  async attest(req: ServiceAttestRequest): Promise<ServiceAttestResponse> {
    const q = await this.tpm.quote(serviceQualifyingData(Buffer.from(req.nonce, 'base64'), this.tlsCertSha256));
    return {
      v: 1,
      ekCert: this.ekCert,
      ekChain: this.ekChain,
      akPublic: this.akPublic,
      quoteAttest: Buffer.from(q.attest).toString('base64'),
      quoteSignature: Buffer.from(q.signature).toString('base64'),
      pcrs: q.pcrs,
    };
  }

  async activate(req: ServiceActivateRequest): Promise<ServiceActivateResponse> {
    let credential: Uint8Array;
    try {
      credential = await this.tpm.activateCredential(Buffer.from(req.credentialBlob, 'base64'), Buffer.from(req.encryptedSecret, 'base64'));
    } catch (cause) {
      throw new SextantError({ code: 'CREDENTIAL_ACTIVATION_FAILED', message: "the key service's TPM cannot activate this credential", cause });
    }
    return { v: 1, credential: Buffer.from(credential).toString('base64') };
  }

  dispose(): Promise<void> {
    return this.tpm.dispose();
  }
}
