/**
 * An HMAC session salted to a TPM key (the EK), with parameter encryption: what keeps a
 * secret off the TPM bus and lets a caller tell that a response really came from the TPM
 * (Part 1 §19, §21; Part 3 §11.1 StartAuthSession). The salt is random, encrypted to the
 * salt key's public area (RSA-OAEP with label "SECRET\0", or one-pass ECDH and KDFe with
 * label "SECRET", Part 1 Annex B.10 / C.6), so only that key's TPM can know the session key.
 *
 * A session is used by one command at a time (the TPM queue runs one operation at a time)
 * and is flushed by its creator: see `withSaltedSession`.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { DIGEST_SIZE, type HashAlg, zeroize } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import { encryptSeed, type SeedOptions } from '../credential/seed.js';
import { TPM_ALG, TPM_RH } from '../constants.js';
import type { TpmtPublic } from '../structures.js';
import { cfb, sessionHmac, TPMA_SESSION } from './crypto.js';

/** What a session does for one command, besides authorizing it. */
export interface SessionUse {
  /** Encrypt the command's first parameter (TPMA_SESSION decrypt: the TPM decrypts it). */
  decrypt?: boolean;
  /** Have the TPM encrypt the response's first parameter (TPMA_SESSION encrypt). */
  encrypt?: boolean;
}

export class HmacSession {
  private nonceTPM: Uint8Array;
  private nonceCaller = new Uint8Array(0);
  private key: Buffer;

  constructor(
    readonly handle: number,
    readonly alg: HashAlg,
    key: Buffer,
    nonceTPM: Uint8Array,
  ) {
    this.key = key;
    this.nonceTPM = nonceTPM;
  }

  /** The nonceCaller of the command being prepared (from `begin`). */
  get currentNonceCaller(): Uint8Array {
    return this.nonceCaller;
  }

  /** A fresh nonceCaller for the next command and the attributes it is sent with. */
  begin(use: SessionUse): { nonceCaller: Uint8Array; attributes: number } {
    this.nonceCaller = randomBytes(DIGEST_SIZE[this.alg]);
    const attributes = TPMA_SESSION.continueSession | (use.decrypt ? TPMA_SESSION.decrypt : 0) | (use.encrypt ? TPMA_SESSION.encrypt : 0);
    return { nonceCaller: this.nonceCaller, attributes };
  }

  /** The command's first parameter data, encrypted for the TPM. */
  encryptCommandParameter(data: Uint8Array, authValue: Uint8Array): Buffer {
    return this.withKey(authValue, (k) => cfb('encrypt', this.alg, k, this.nonceCaller, this.nonceTPM, data));
  }

  commandHmac(cpHash: Uint8Array, attributes: number, authValue: Uint8Array): Buffer {
    return this.withKey(authValue, (key) => sessionHmac(this.alg, { key, pHash: cpHash, nonceNewer: this.nonceCaller, nonceOlder: this.nonceTPM, attributes }));
  }

  /**
   * Checks the response HMAC and takes the TPM's new nonce; TPM_RESPONSE_HMAC_INVALID when
   * the response was not made by the TPM that holds this session key.
   */
  checkResponse(rpHash: Uint8Array, nonceTPM: Uint8Array, attributes: number, hmac: Uint8Array, authValue: Uint8Array, command: string): void {
    const expected = this.withKey(authValue, (key) => sessionHmac(this.alg, { key, pHash: rpHash, nonceNewer: nonceTPM, nonceOlder: this.nonceCaller, attributes }));
    if (hmac.length !== expected.length || !timingSafeEqual(hmac, expected)) {
      throw new SextantError({ code: 'TPM_RESPONSE_HMAC_INVALID', message: `${command}: the response HMAC does not verify (the response was changed on its way from the TPM)` });
    }
    this.nonceTPM = nonceTPM;
  }

  /** The response's first parameter data, decrypted (after checkResponse took the new nonceTPM). */
  decryptResponseParameter(data: Uint8Array, authValue: Uint8Array): Buffer {
    return this.withKey(authValue, (k) => cfb('decrypt', this.alg, k, this.nonceTPM, this.nonceCaller, data));
  }

  /** Forgets the session key (the TPM's copy goes with FlushContext). */
  dispose(): void {
    zeroize(this.key);
  }

  private withKey<T>(authValue: Uint8Array, fn: (key: Buffer) => T): T {
    const key = Buffer.concat([this.key, authValue]);
    try {
      return fn(key);
    } finally {
      zeroize(key);
    }
  }
}

/** The salt and what StartAuthSession needs of it. */
export interface SaltedStart {
  salt: Buffer;
  encryptedSalt: Uint8Array;
  nonceCaller: Uint8Array;
  parameters: {
    tpmKey: number;
    bind: number;
    nonceCaller: Uint8Array;
    encryptedSalt: Uint8Array;
    sessionType: number;
    symmetric: { algorithm: typeof TPM_ALG.AES; keyBits: number; mode: number };
    authHash: number;
  };
}

/** TPM_SE_HMAC (Part 2 §6.11). */
const TPM_SE_HMAC = 0x00;

/**
 * The StartAuthSession input for an unbound HMAC session salted to `saltKey` (the loaded key
 * at `tpmKey`), SHA-256, AES-128-CFB parameter encryption. The salt is encrypted to
 * `saltKey` as the caller knows it (`opts` fixes the salt, for tests that look for it) (from the EK certificate where it has one): if the TPM's
 * key is another one, the TPM cannot recover the salt and refuses the session.
 */
export function saltedStart(tpmKey: number, saltKey: TpmtPublic, opts: SeedOptions = {}): SaltedStart {
  const { seed, encryptedSecret } = encryptSeed(saltKey, 'SECRET', opts);
  const nonceCaller = randomBytes(DIGEST_SIZE.sha256);
  return {
    salt: seed,
    encryptedSalt: encryptedSecret,
    nonceCaller,
    parameters: {
      tpmKey,
      bind: TPM_RH.NULL,
      nonceCaller,
      encryptedSalt: encryptedSecret,
      sessionType: TPM_SE_HMAC,
      symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB },
      authHash: TPM_ALG.SHA256,
    },
  };
}
