/**
 * A raw byte transport to swtpm's TCP command port (the port the `swtpm:` TCTI uses): one
 * command, one response, strictly in turn. For testing tpm/commands against a real TPM without
 * the FFI engine.
 */
import { connect, type Socket } from 'node:net';
import type { TpmTransport } from '../../tpm/commands/command.js';

export interface SocketTransport extends TpmTransport {
  close(): void;
}

export async function connectSwtpm(port: number): Promise<SocketTransport> {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
  let buffered = Buffer.alloc(0);
  let waiter: (() => void) | undefined;
  let failure: Error | undefined;
  socket.on('data', (d) => {
    buffered = Buffer.concat([buffered, d]);
    waiter?.();
  });
  socket.on('error', (e) => {
    failure = e;
    waiter?.();
  });
  socket.on('close', () => {
    failure ??= new Error('swtpm closed the connection');
    waiter?.();
  });
  let queue: Promise<unknown> = Promise.resolve();

  async function exchange(command: Uint8Array): Promise<Uint8Array> {
    socket.write(command);
    for (;;) {
      if (buffered.length >= 6) {
        const size = buffered.readUInt32BE(2);
        if (buffered.length >= size) {
          const response = buffered.subarray(0, size);
          buffered = buffered.subarray(size);
          return Uint8Array.from(response);
        }
      }
      if (failure) throw failure;
      await new Promise<void>((resolve) => (waiter = resolve));
      waiter = undefined;
    }
  }

  return {
    send(command) {
      const next = queue.then(() => exchange(command));
      queue = next.catch(() => undefined);
      return next;
    },
    close() {
      socket.destroy();
    },
  };
}
