import { request } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { SextantError, INPUT_ERROR_CODES, FAILURE_ERROR_CODES, type SextantErrorCode } from '../../lib/errors.js';
import { ADMIN_ROUTE, type AdminRequest } from './protocol.js';

/**
 * The client of the key service's admin socket (keyservice/admin/server.ts): what
 * `sextant keyservice measurements ...` and `sextant mini apply` call. Errors are the
 * service's own, as SextantError with its code; KEYSERVICE_UNREACHABLE when nothing answers.
 */

/**
 * The default admin socket of a service started with --state-dir DIR (without --admin-socket):
 * `$TMPDIR/sextant-ks-<16 hex of SHA-256 of DIR's absolute path>/admin.sock`. Not inside the
 * state dir: that is copied (or mounted from one Secret) to every replica, and a socket file
 * cannot be copied; keyed by the state dir so two services with two state dirs never meet.
 */
export function adminSocketPath(stateDir: string): string {
  const id = createHash('sha256').update(path.resolve(stateDir)).digest('hex').slice(0, 16);
  return path.join(os.tmpdir(), `sextant-ks-${id}`, 'admin.sock');
}

export interface MeasurementSetView {
  imageVersion: string;
  label: string;
  state: 'current' | 'overlap' | 'retired';
  /** For an overlap set: when it stops being accepted (ISO time). */
  acceptedUntil?: string;
  loadedAt: string;
}

const KNOWN_CODES: ReadonlySet<string> = new Set<string>([...INPUT_ERROR_CODES, ...FAILURE_ERROR_CODES]);
const MAX_ANSWER_BYTES = 1024 * 1024;

async function call<T>(socket: string, body: AdminRequest, timeoutMs = 30_000): Promise<T> {
  const text = JSON.stringify(body);
  const { status, answer } = await new Promise<{ status: number; answer: string }>((resolve, reject) => {
    const req = request(
      { socketPath: socket, path: ADMIN_ROUTE, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > MAX_ANSWER_BYTES) req.destroy(new SextantError({ code: 'PROTOCOL_INVALID', message: `admin answer over ${MAX_ANSWER_BYTES} bytes` }));
          else chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, answer: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new SextantError({ code: 'TIMEOUT', message: `the key service's admin socket ${socket} did not answer in ${timeoutMs} ms` })));
    req.on('error', (e) =>
      reject(e instanceof SextantError ? e : new SextantError({ code: 'KEYSERVICE_UNREACHABLE', message: `no key service answers on ${socket} (${(e as NodeJS.ErrnoException).code ?? e.message}); is it running with this --state-dir or --admin-socket?`, cause: e })),
    );
    req.end(text);
  });
  let j: unknown;
  try {
    j = JSON.parse(answer);
  } catch {
    throw new SextantError({ code: 'PROTOCOL_INVALID', message: `the admin socket answered ${status} with no JSON` });
  }
  const err = (j as { error?: { code?: unknown; message?: unknown } }).error;
  if (status !== 200 || err) {
    const code = typeof err?.code === 'string' && KNOWN_CODES.has(err.code) ? (err.code as SextantErrorCode) : 'INTERNAL';
    throw new SextantError({ code, message: typeof err?.message === 'string' ? err.message : `the admin socket answered ${status}` });
  }
  return j as T;
}

export async function adminStatus(socket: string): Promise<{ sets: MeasurementSetView[]; highWaterVersion: string }> {
  return call(socket, { op: 'status' });
}

async function readInput(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (cause) {
    throw new SextantError({ code: what === 'signature' ? 'SIGNATURE_INVALID' : 'FILE_NOT_FOUND', message: `cannot read the measurements ${what} ${file}`, cause });
  }
}

/**
 * Sends a signed measurements file (and its signature, default FILE.sig) to the service, which
 * checks the signature with its own key(s) and the anti-rollback rule before anything changes.
 */
export async function adminLoad(
  socket: string,
  o: { measurementsFile: string; signatureFile?: string; overlapMs?: number; force?: boolean },
): Promise<{ loaded: MeasurementSetView; previous?: MeasurementSetView }> {
  const bytes = await readInput(o.measurementsFile, 'file');
  const sig = (await readInput(o.signatureFile ?? o.measurementsFile + '.sig', 'signature')).toString('utf8');
  return call(socket, {
    op: 'load',
    measurements: bytes.toString('base64'),
    sig,
    ...(o.overlapMs !== undefined && { overlapMs: o.overlapMs }),
    ...(o.force && { force: true }),
  });
}

export async function adminRetire(socket: string, o: { imageVersion: string }): Promise<{ retired: MeasurementSetView }> {
  return call(socket, { op: 'retire', imageVersion: o.imageVersion });
}
