import { base64, check, int, isPlainObject, list, literal, object, oneOf, text, type Schema } from '../../protocol/schema.js';
import type { SavedRollout } from '../reference-store.js';
import { SextantError } from '../../lib/errors.js';

/**
 * The key service's admin interface: JSON over HTTP on a unix socket in its state directory
 * (0600, owner only), for the operator's `sextant keyservice measurements ...` and for
 * `sextant mini apply`. One route, POST /admin/v1/measurements, with a closed, bounded body
 * per operation; the answer is the operation's result or {"error": {code, message}}.
 */

export const ADMIN_ROUTE = '/admin/v1/measurements';
/** The largest measurements file accepted over the socket (real ones are a few KiB). */
export const MAX_ADMIN_MEASUREMENTS_BYTES = 1024 * 1024;
/** A signature: base64 DER (about 100 characters) or a Sigstore bundle (a few KiB). */
export const MAX_ADMIN_SIG_CHARS = 64 * 1024;
export const MAX_ADMIN_REQUEST_BYTES = Math.ceil(MAX_ADMIN_MEASUREMENTS_BYTES / 3) * 4 + MAX_ADMIN_SIG_CHARS + 4096;
/** The longest overlap window an operator may ask for: one year. */
export const MAX_OVERLAP_MS = 366 * 24 * 3600_000;
/** An image version as the admin interface names it (parsed by keyservice/image-version.ts). */
export const IMAGE_VERSION_RE = /^v?[0-9]{1,9}(\.[0-9]{1,9}){0,7}$/;

export type AdminRequest =
  | { op: 'status' }
  | { op: 'load'; measurements: string; sig: string; overlapMs?: number; force?: boolean }
  | { op: 'retire'; imageVersion: string };

const bool: Schema = (v, at, p) => {
  if (typeof v !== 'boolean') p.add(at, 'must be true or false');
};

const SCHEMAS: Record<AdminRequest['op'], Schema> = {
  status: object({ op: literal('status') }),
  load: object(
    {
      op: literal('load'),
      measurements: base64({ min: 2, max: MAX_ADMIN_MEASUREMENTS_BYTES }),
      sig: text(MAX_ADMIN_SIG_CHARS),
      overlapMs: int(0, MAX_OVERLAP_MS),
      force: bool,
    },
    ['overlapMs', 'force'],
  ),
  retire: object({ op: literal('retire'), imageVersion: text(32, IMAGE_VERSION_RE, 'a dotted numeric image version (1.2.3)') }),
};

/** Checks an admin request body; PROTOCOL_INVALID naming the first bad fields. */
export function assertAdminRequest(x: unknown): AdminRequest {
  if (!isPlainObject(x)) throw new SextantError({ code: 'PROTOCOL_INVALID', message: 'invalid admin request: (root): must be a JSON object' });
  const op = x.op;
  check(oneOf(Object.keys(SCHEMAS)), op, 'admin request op');
  check(SCHEMAS[op as AdminRequest['op']], x, `admin ${String(op)} request`);
  return x as AdminRequest;
}

const savedSet = object(
  {
    file: base64({ min: 2, max: MAX_ADMIN_MEASUREMENTS_BYTES }),
    sig: text(MAX_ADMIN_SIG_CHARS),
    state: oneOf(['current', 'overlap', 'retired']),
    acceptedUntil: int(0, Number.MAX_SAFE_INTEGER),
    loadedAt: int(0, Number.MAX_SAFE_INTEGER),
  },
  ['acceptedUntil'],
);
const savedRollout = object({
  v: literal(1),
  highWater: object({ imageVersion: text(32, IMAGE_VERSION_RE, 'a dotted numeric image version'), sha256: text(64, /^[0-9a-f]{64}$/, '64 hex digits') }),
  sets: list(savedSet, 16),
});

/**
 * The saved measurement sets (STATE/measurements-rollout.json, etcd measurements/rollout):
 * checked like a request (PROTOCOL_INVALID), since etcd and the disk are not trusted for shape
 * either; each set's signature is checked again when it is adopted.
 */
export function parseSavedRollout(x: unknown): SavedRollout {
  check(savedRollout, x, 'saved measurement sets');
  return x as SavedRollout;
}
