/**
 * Salted HMAC sessions as the client starts them: TPM2_StartAuthSession with the salt
 * encrypted to a loaded key (the EK), the session key derived, and the session flushed
 * whatever happens. The salt key's public area is the caller's: from the EK certificate
 * where it has one (an unauthenticated CreatePrimary / ReadPublic answer could name a key an
 * interposer holds), else the public area the TPM returned.
 */
import { X509Certificate } from 'node:crypto';
import { zeroize } from '../../lib/bytes.js';
import { execute, type TpmTransport } from '../commands/command.js';
import { startAuthSession } from '../commands/start-auth-session.js';
import { TPM_ALG } from '../constants.js';
import type { SeedOptions } from '../credential/seed.js';
import { tpmtWithPublicKey } from '../public-key.js';
import { sessionKey } from '../session/crypto.js';
import { HmacSession, saltedStart } from '../session/session.js';
import type { TpmtPublic } from '../structures.js';
import { flushContext, type LoadedKey } from './keys.js';

export async function withSaltedSession<T>(
  t: TpmTransport,
  saltKey: { handle: number; public: TpmtPublic },
  fn: (s: HmacSession) => Promise<T>,
  opts: SeedOptions = {},
): Promise<T> {
  const start = saltedStart(saltKey.handle, saltKey.public, opts);
  let session: HmacSession;
  try {
    const out = await execute(t, startAuthSession, start.parameters);
    const key = sessionKey('sha256', new Uint8Array(0), start.salt, out.nonceTPM, start.nonceCaller);
    session = new HmacSession(out.sessionHandle, 'sha256', key, out.nonceTPM);
  } finally {
    zeroize(start.salt);
  }
  try {
    return await fn(session);
  } finally {
    session.dispose();
    await flushContext(t, session.handle);
  }
}

/**
 * The public area to salt to for a loaded EK: the EK certificate's key in the EK's own
 * public area, when the certificate certifies a key of the same type and size (swtpm's ECC
 * EK certificate is for a P-384 key, not the P-256 EK of template L-2: then the loaded EK's).
 */
export function saltKeyFor(ek: LoadedKey, ekCertificate?: Uint8Array): { handle: number; public: TpmtPublic } {
  const loaded = ek.public.value;
  if (!ekCertificate) return { handle: ek.handle, public: loaded };
  const certified = tpmtWithPublicKey(loaded, new X509Certificate(ekCertificate).publicKey);
  const sameShape =
    certified.type === TPM_ALG.RSA && loaded.type === TPM_ALG.RSA
      ? certified.parameters.keyBits === loaded.parameters.keyBits
      : certified.type === TPM_ALG.ECC && loaded.type === TPM_ALG.ECC && certified.parameters.curveID === loaded.parameters.curveID;
  return { handle: ek.handle, public: sameShape ? certified : loaded };
}
