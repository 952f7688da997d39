/**
 * The only way a disk that is not blank and not provably sextant's may be re-initialized.
 *
 * The disk code never decides this itself. A caller may pass a `ResetAuthorizer`, which must
 * be backed by an authenticated statement (design: a reset order signed by the key service
 * for this node, naming the device fingerprint below, obtained over the attested channel;
 * an admin issues it after looking at what `agent disk prepare` reported). The fingerprint
 * binds the order to the exact bytes the admin saw: if anything on the disk changed since,
 * the fingerprint differs and the reset is refused.
 *
 * The CLI never passes one, so `sextant agent disk prepare` cannot destroy data.
 */
export interface ResetRequest {
  device: string;
  /** sha256 (hex) of the device's first BLANK_HEAD_BYTES plus its size, see `resetFingerprint`. */
  fingerprint: string;
  /** What the refusal said was found (shown to whoever authorizes). */
  found: string;
}

export interface ResetAuthorizer {
  /** Resolves true only for a verified, unexpired reset order naming exactly this fingerprint. */
  authorizes(req: ResetRequest): Promise<boolean>;
}
