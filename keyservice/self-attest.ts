import { SextantError } from '../lib/errors.js';
import type { ServiceActivateRequest, ServiceActivateResponse, ServiceAttestRequest, ServiceAttestResponse } from '../protocol/messages.js';
import { serviceQualifyingData } from '../protocol/seal.js';
import type { TpmIdentityEvidence } from '../attestation/evidence.js';
import { produceIdentity, produceQuote } from '../attestation/tpm/produce.js';
import type { AttestationTpm } from '../attestation/tpm/tpm.js';

/**
 * The key service's own attestation (mutual attestation, off unless a TPM is configured):
 * a quote of its SHA-256 PCRs 0-15 over the agent's nonce and the SHA-256 of its TLS
 * certificate, its EK certificate and AK public; and TPM2_ActivateCredential for the agent's
 * challenge, which proves the AK lives in the TPM of that EK. Activation needs no session:
 * it only ever opens credentials made for this AK, which is exactly what it proves.
 */

export class ServiceSelfAttestation {
  private constructor(
    private readonly tpm: AttestationTpm,
    private readonly tlsCertSha256: Buffer,
    private readonly identity: TpmIdentityEvidence,
  ) {}

  /** Reads the EK certificate and AK once; `fingerprint` is the service's `sha256:<hex>`. */
  static async open(tpm: AttestationTpm, fingerprint: string, ekChainDer: Uint8Array[] = []): Promise<ServiceSelfAttestation> {
    return new ServiceSelfAttestation(tpm, Buffer.from(fingerprint.replace(/^sha256:/, ''), 'hex'), await produceIdentity(tpm, ekChainDer));
  }

  async attest(req: ServiceAttestRequest): Promise<ServiceAttestResponse> {
    const quote = await produceQuote(this.tpm, serviceQualifyingData(Buffer.from(req.nonce, 'base64'), this.tlsCertSha256));
    return { v: 1, ...this.identity, ...quote };
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
