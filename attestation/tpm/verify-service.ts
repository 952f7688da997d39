import type { X509Certificate } from 'node:crypto';
import { toHex } from '../../lib/bytes.js';
import { SextantError, isSextantError, type SextantErrorCode } from '../../lib/errors.js';
import type { TpmIdentityEvidence, TpmQuoteEvidence } from '../evidence.js';
import { checkMeasurements } from '../policy/check-measurements.js';
import type { ReferenceSet } from '../policy/reference.js';
import { verifyEkCert } from './ek-chain.js';
import { checkPcrDigest } from './pcr-digest.js';
import type { TpmChecks } from './checks.js';
import { codecTpmChecks } from './codec-checks.js';

/**
 * The agent's check of the key service's own attestation (mutual attestation), with the same
 * stages the key service runs on nodes: verifyEkCert -> parseAk -> verifyQuote (signature,
 * qualifying data) -> checkPcrDigest -> checkMeasurements. Each failure becomes a KEYSERVICE_*
 * code so the agent's refusal of the service is never confused with the service's refusal of
 * the node. The agent calls it directly (agent/attest/service-check.ts): the verifier lives in
 * this floor, below both the agent and the key service.
 */

export interface ServiceVerifierOptions {
  /** Trusted CAs for the service TPM's EK certificate. */
  ekCas: readonly X509Certificate[];
  /** Expected PCRs of the key service's machine (signed measurements), newest first. */
  references: readonly ReferenceSet[];
  tpm?: TpmChecks;
  now?: () => Date;
}

export interface VerifiedServiceEvidence {
  /** The measurement set the service's PCRs matched. */
  measurements: string;
  /** Hex TPM Name of the service's AK. */
  akName: string;
  warnings: string[];
  /** TPM2_MakeCredential to the EK in the service's certificate, for its AK. */
  makeCredential(secret: Uint8Array): { credentialBlob: Uint8Array; encryptedSecret: Uint8Array };
}

function as<T>(code: SextantErrorCode, what: string, f: () => T, special: Partial<Record<string, SextantErrorCode>> = {}): T {
  try {
    return f();
  } catch (e) {
    if (!isSextantError(e)) throw e;
    throw new SextantError({ code: special[e.code] ?? code, message: `key service ${what}: ${e.message}`, cause: e });
  }
}

/**
 * EK chain, AK attributes, quote signature, qualifying data, pcrDigest, expected PCRs; throws
 * KEYSERVICE_* codes. Returns what the credential-activation round needs.
 */
export function verifyServiceEvidence(o: ServiceVerifierOptions, e: TpmIdentityEvidence & TpmQuoteEvidence, qualifyingData: Uint8Array): VerifiedServiceEvidence {
  const tpm = o.tpm ?? codecTpmChecks;
  const ekCert = as('KEYSERVICE_EK_UNTRUSTED', 'EK certificate', () =>
    verifyEkCert(Buffer.from(e.ekCert ?? '', 'base64'), o.ekCas, (o.now ?? (() => new Date()))(), (e.ekChain ?? []).map((c) => Buffer.from(c, 'base64'))).cert,
  );
  const ak = as('KEYSERVICE_AK_INVALID', 'AK', () => tpm.parseAk(Buffer.from(e.akPublic, 'base64')));
  const quoted = as('KEYSERVICE_QUOTE_INVALID', 'quote', () => tpm.verifyQuote(ak, Buffer.from(e.quoteAttest, 'base64'), Buffer.from(e.quoteSignature, 'base64'), qualifyingData), {
    // Signed by its AK, but not over our nonce and the TLS certificate we are talking to: stale or relayed.
    QUOTE_NONCE_MISMATCH: 'KEYSERVICE_QUOTE_NOT_BOUND',
  });
  as('KEYSERVICE_QUOTE_INVALID', 'PCR values', () => checkPcrDigest(quoted, e.pcrs));
  const verdict = as('KEYSERVICE_MEASUREMENTS_MISMATCH', 'measurements', () => checkMeasurements(o.references, e.pcrs));
  return {
    measurements: verdict.matched.label,
    akName: toHex(ak.name),
    warnings: verdict.warnings,
    makeCredential: (secret) => as('KEYSERVICE_EK_UNTRUSTED', 'EK', () => tpm.makeCredential(ekCert.publicKey, ak.name, secret)),
  };
}
