import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { chmod, lstat, mkdir, rm } from 'node:fs/promises';
import { assertPrivate } from '../state-dir.js';
import path from 'node:path';
import { SextantError, isSextantError } from '../../lib/errors.js';
import { readJsonBody, sendJson } from '../../lib/http-json.js';
import { adminSocketPath } from './client.js';
import { ADMIN_ROUTE, MAX_ADMIN_REQUEST_BYTES, assertAdminRequest, type AdminRequest } from './protocol.js';

/**
 * The admin socket (docs/rollout.md): HTTP on a unix socket, 0600, owner only, in a 0700 folder
 * of this user (adminSocketPath). When another running service (a replica sharing the state
 * dir) already answers there, this one takes admin-<pid>-<port>.sock next to it.
 * A socket file nothing answers on is a leftover of a crash and is replaced.
 */

export interface AdminServer {
  path: string;
  close(): Promise<void>;
}

function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(socket);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

async function claim(socket: string): Promise<boolean> {
  const st = await lstat(socket).catch(() => undefined);
  if (!st) return true;
  if (!st.isSocket()) throw new SextantError({ code: 'CONFIG_INVALID', message: `${socket} exists and is not a socket: choose another --admin-socket` });
  if (await answers(socket)) return false;
  await rm(socket, { force: true });
  return true;
}

/** The socket's folder: created 0700, and refused when it is not this user's alone (another user made it first). */
async function privateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid())) {
    throw new SextantError({ code: 'CONFIG_INVALID', message: `${dir} (the admin socket's folder) is not a directory owned by this user: choose --admin-socket` });
  }
  assertPrivate(dir, st.mode, 'directory');
}

export async function startAdminServer(o: { stateDir: string; socket?: string; /** Tells replicas on one host apart (`<pid>-<port>`). */ replica: string; handle: (r: AdminRequest) => Promise<unknown> }): Promise<AdminServer> {
  let socket = o.socket ?? adminSocketPath(o.stateDir);
  if (!o.socket) await privateDir(path.dirname(socket));
  if (!(await claim(socket))) {
    if (o.socket) throw new SextantError({ code: 'CONFIG_INVALID', message: `another key service answers on the admin socket ${socket}` });
    socket = path.join(path.dirname(socket), `admin-${o.replica}.sock`);
    await claim(socket);
  }
  const server: Server = createServer((req, res) => {
    void (async () => {
      try {
        if (req.method !== 'POST' || req.url !== ADMIN_ROUTE) throw new SextantError({ code: 'PROTOCOL_INVALID', message: `the admin socket answers POST ${ADMIN_ROUTE} only` });
        const body = assertAdminRequest(await readJsonBody(req, MAX_ADMIN_REQUEST_BYTES));
        sendJson(res, 200, await o.handle(body));
      } catch (e) {
        const err = isSextantError(e) ? e : new SextantError({ code: 'INTERNAL', message: (e as Error).message ?? String(e) });
        sendJson(res, err.isInputError ? 400 : err.code === 'INTERNAL' ? 500 : 409, { error: err.toJSON() });
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new SextantError({ code: 'IO_FAILED', message: `cannot listen on the admin socket ${socket}`, cause: e })));
    server.listen(socket, () => resolve());
  });
  await chmod(socket, 0o600);
  return {
    path: socket,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await rm(socket, { force: true });
    },
  };
}
