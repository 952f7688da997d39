import type { IncomingMessage, ServerResponse } from 'node:http';
import { SextantError } from './errors.js';
import { parseJsonBounded } from './json-bounded.js';

/**
 * The JSON-over-HTTPS plumbing both of sextant's servers share (the key service and the
 * node's recovery endpoint): a body reader that enforces the size limit while reading, and
 * an answer writer that never lets a proxy cache a reply.
 */

/** Reads a request body; REQUEST_TOO_LARGE as soon as `limit` bytes are passed. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) throw new SextantError({ code: 'REQUEST_TOO_LARGE', message: `request body over ${limit} bytes` });
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) throw new SextantError({ code: 'REQUEST_TOO_LARGE', message: `request body over ${limit} bytes` });
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** Reads and parses a JSON body: the size bound while reading, then the nesting bound (lib/json-bounded.ts). */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  return parseJsonBounded((await readBody(req, limit)).toString('utf8'));
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
