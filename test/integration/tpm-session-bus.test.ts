/**
 * What a TPM bus sniffer sees: a recording TCP proxy sits between the client and swtpm (the
 * `swtpm:` TCTI's server port is a plain TCP socket carrying raw TPM commands and responses;
 * the control port is passed through), so every byte the client and the TPM exchange is
 * recorded, and the proxy can change a response on its way back.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { hash } from '../../lib/bytes.js';
import { isSextantError } from '../../lib/errors.js';
import { run } from '../../lib/exec.js';
import { CONTINUE_SESSION, execute } from '../../tpm/commands/command.js';
import { activateCredential as activateCredentialCommand } from '../../tpm/commands/activate-credential.js';
import { policySecret } from '../../tpm/commands/policy-secret.js';
import { startAuthSession, TPM_SE } from '../../tpm/commands/start-auth-session.js';
import { TPM_ALG, TPM_CC, TPM_RH } from '../../tpm/constants.js';
import { activateCredential } from '../../tpm/client/activate.js';
import { readEkCertificate } from '../../tpm/client/ek-cert.js';
import { flushContext } from '../../tpm/client/keys.js';
import { Tpm } from '../../tpm/client/tpm.js';
import { makeCredential } from '../../tpm/credential/make-credential.js';
import { TpmResponseError } from '../../tpm/rc.js';
import { useSwtpm } from '../helpers/swtpm.js';

const swtpm = useSwtpm(test);

interface Exchange {
  code: number;
  command: Buffer;
  response: Buffer;
}

/** Splits a byte stream into TPM frames (tag, size, ...) as they complete. */
function framer(onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  let buffered = Buffer.alloc(0);
  return (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 6 && buffered.length >= buffered.readUInt32BE(2)) {
      const size = buffered.readUInt32BE(2);
      onFrame(buffered.subarray(0, size));
      buffered = buffered.subarray(size);
    }
  };
}

class RecordingProxy {
  readonly exchanges: Exchange[] = [];
  /** Changes a response before the client gets it (return undefined to pass it on). */
  tamperResponse?: (code: number, response: Buffer) => Buffer | undefined;
  tamperCommand?: (code: number, command: Buffer) => Buffer | undefined;
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(readonly port: number) {}

  static async start(upstreamPort: number): Promise<RecordingProxy> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const server = await listen(0);
      const port = (server.address() as { port: number }).port;
      const ctrl = await listen(port + 1).catch(() => undefined);
      if (!ctrl) {
        server.close();
        continue;
      }
      const proxy = new RecordingProxy(port);
      proxy.servers.push(server, ctrl);
      server.on('connection', (c) => proxy.relay(c, upstreamPort));
      ctrl.on('connection', (c) => proxy.pipe(c, upstreamPort + 1));
      return proxy;
    }
    throw new Error('no free pair of loopback ports for the proxy');
  }

  get tcti(): string {
    return `swtpm:host=127.0.0.1,port=${this.port}`;
  }

  /** Every byte that crossed, both directions. */
  bytes(): Buffer {
    return Buffer.concat(this.exchanges.flatMap((e) => [e.command, e.response]));
  }

  private track(...sockets: Socket[]): void {
    for (const s of sockets) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => s.destroy());
    }
  }

  private pipe(client: Socket, port: number): void {
    const upstream = connect({ host: '127.0.0.1', port });
    this.track(client, upstream);
    client.pipe(upstream).pipe(client);
  }

  private relay(client: Socket, port: number): void {
    const upstream = connect({ host: '127.0.0.1', port });
    this.track(client, upstream);
    const pending: Exchange[] = [];
    client.on(
      'data',
      framer((frame) => {
        const code = frame.readUInt32BE(6);
        const command = this.tamperCommand?.(code, Buffer.from(frame)) ?? Buffer.from(frame);
        pending.push({ code, command, response: Buffer.alloc(0) });
        upstream.write(command);
      }),
    );
    upstream.on(
      'data',
      framer((frame) => {
        const exchange = pending.shift()!;
        exchange.response = Buffer.from(frame);
        this.exchanges.push(exchange);
        client.write(this.tamperResponse?.(exchange.code, Buffer.from(frame)) ?? frame);
      }),
    );
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
  }
}

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

/** Opens the TPM through a fresh proxy; the proxy and the connection are closed after `fn`. */
async function throughProxy(fn: (tpm: Tpm, proxy: RecordingProxy) => Promise<void>): Promise<void> {
  const proxy = await RecordingProxy.start(swtpm().port);
  const tpm = await Tpm.open({ tcti: proxy.tcti });
  try {
    await fn(tpm, proxy);
  } finally {
    await tpm.close();
    await proxy.stop();
  }
}

const empty = new Uint8Array(0);

test.serial('ActivateCredential in a salted session: the proxy sees neither the released secret nor the salt', async (t) => {
  await throughProxy(async (tpm, proxy) => {
    const cert = await readEkCertificate(tpm, 'rsa');
    const secret = randomBytes(32);
    const salt = randomBytes(32);
    const released = await tpm.withEkAndAk('rsa', async (ek, ak) => {
      const cred = makeCredential({ ekPublic: ek.public, akName: ak.name, secret });
      const input = { activate: ak, ek, ekCertificate: cert.der, ...cred };
      return tpm.run((transport) => activateCredential(transport, input, { seed: salt }));
    });
    t.deepEqual(Buffer.from(released), secret, 'the TPM released the secret');

    const recorded = proxy.bytes();
    const codes = proxy.exchanges.map((e) => e.code);
    t.true(codes.includes(TPM_CC.StartAuthSession) && codes.includes(TPM_CC.ActivateCredential), 'the proxy saw the session start and the activation');
    const salted = proxy.exchanges.find((e) => e.code === TPM_CC.StartAuthSession && e.command.readUInt32BE(10) !== TPM_RH.NULL);
    t.truthy(salted, 'one session was started with a tpmKey (salted)');
    t.is(recorded.indexOf(secret), -1, 'the released secret never crossed in clear');
    t.is(recorded.indexOf(salt), -1, 'the salt never crossed in clear');
    t.is(recorded.indexOf(hash('sha256', salt)), -1);
    t.deepEqual(await tpm.sessionHandles(), []);
    t.deepEqual(await tpm.transientHandles(), []);
  });
});

test.serial('control: the same activation with a password for the AK puts the secret on the bus in clear', async (t) => {
  // Without this, "not found in the recording" could mean the recording missed it.
  await throughProxy(async (tpm, proxy) => {
    const secret = randomBytes(32);
    await tpm.withEkAndAk('rsa', (ek, ak) =>
      tpm.run(async (transport) => {
        const cred = makeCredential({ ekPublic: ek.public, akName: ak.name, secret });
        const { sessionHandle } = await execute(transport, startAuthSession, {
          tpmKey: TPM_RH.NULL, bind: TPM_RH.NULL, nonceCaller: randomBytes(16), encryptedSalt: empty,
          sessionType: TPM_SE.POLICY, symmetric: { algorithm: TPM_ALG.NULL }, authHash: TPM_ALG.SHA256,
        });
        try {
          await execute(transport, policySecret, { authHandle: TPM_RH.ENDORSEMENT, policySession: sessionHandle, nonceTPM: empty, cpHashA: empty, policyRef: empty, expiration: 0 });
          const out = await execute(transport, activateCredentialCommand, { activateHandle: ak.handle, keyHandle: ek.handle, credentialBlob: cred.credentialBlob, secret: cred.encryptedSecret }, [
            { password: empty },
            { sessionHandle, nonceCaller: randomBytes(16), attributes: CONTINUE_SESSION },
          ]);
          t.deepEqual(Buffer.from(out.certInfo), secret);
        } finally {
          await flushContext(transport, sessionHandle);
        }
      }),
    );
    t.not(proxy.bytes().indexOf(secret), -1, 'an unprotected activation shows the secret to the proxy');
  });
});

/**
 * Byte offsets in an ActivateCredential response: header 10, parameterSize 4, certInfo (size
 * 2, data), then the HMAC session's nonceTPM (size 2, data), attributes 1, HMAC (size 2, data).
 */
const CERT_INFO_FIRST_BYTE = 16;
const sessionArea = (r: Buffer) => 10 + 4 + r.readUInt32BE(10);

for (const [what, offset] of [
  ['a byte of the encrypted certInfo', (_r: Buffer) => CERT_INFO_FIRST_BYTE],
  ['the nonceTPM of the HMAC session', (r: Buffer) => sessionArea(r) + 2],
  ['the session attributes', (r: Buffer) => sessionArea(r) + 2 + r.readUInt16BE(sessionArea(r))],
  ['the response HMAC', (r: Buffer) => sessionArea(r) + 2 + r.readUInt16BE(sessionArea(r)) + 1 + 2 + 5],
] as const) {
  test.serial(`a response with ${what} flipped on the way is TPM_RESPONSE_HMAC_INVALID`, async (t) => {
    await throughProxy(async (tpm, proxy) => {
      let flipped = 0;
      proxy.tamperResponse = (code, response) => {
        if (code !== TPM_CC.ActivateCredential || response.readUInt32BE(6) !== 0) return undefined;
        flipped++;
        response[offset(response)] ^= 0x01;
        return response;
      };
      const secret = randomBytes(32);
      const error = await t.throwsAsync(
        tpm.withEkAndAk('rsa', (ek, ak) => {
          const cred = makeCredential({ ekPublic: ek.public, akName: ak.name, secret });
          return tpm.activateCredential({ activate: ak, ek, ...cred });
        }),
      );
      t.is(flipped, 1);
      t.true(isSextantError(error, 'TPM_RESPONSE_HMAC_INVALID'), String(error));
      // The sessions and keys were flushed all the same.
      t.deepEqual(await tpm.sessionHandles(), []);
      t.deepEqual(await tpm.transientHandles(), []);
    });
  });
}

test.serial('PCR_Event in a salted session: the event data is encrypted on the bus; the TPM refuses a changed command', async (t) => {
  await throughProxy(async (tpm, proxy) => {
    const cert = await readEkCertificate(tpm, 'rsa');
    const data = randomBytes(32);
    const before = await tpm.pcrRead({ sha256: [16] });
    const digests = await tpm.pcrEventProtected(16, data, { kind: 'rsa', certificate: cert.der });
    t.deepEqual(Buffer.from(digests.sha256!), hash('sha256', data), 'the TPM hashed the decrypted data');
    t.is(proxy.bytes().indexOf(data), -1, 'the event data never crossed in clear');
    const after = await tpm.pcrRead({ sha256: [16] });
    t.is(after.sha256!['16'], hash('sha256', Buffer.from(before.sha256!['16'], 'hex'), hash('sha256', data)).toString('hex'));

    // A flipped byte in the encrypted data: the command HMAC no longer matches and the TPM
    // refuses the command (it checks what we compute), leaving the PCR as it was.
    proxy.tamperCommand = (code, command) => {
      if (code !== TPM_CC.PCR_Event) return undefined;
      command[command.length - 1] ^= 0x01;
      return command;
    };
    const error = await t.throwsAsync(tpm.pcrEventProtected(16, data, { kind: 'rsa', certificate: cert.der }));
    // TPM_RC_BAD_AUTH: an authorization failure on an entity without dictionary-attack protection.
    t.true(error instanceof TpmResponseError && error.rcName === 'TPM_RC_BAD_AUTH', String(error));
    t.deepEqual(await tpm.pcrRead({ sha256: [16] }), after);
    t.deepEqual(await tpm.sessionHandles(), []);
  });
});

test.serial('the salt goes to the EK certificate\'s key: a certificate for another key makes the TPM refuse the session', async (t) => {
  // A certificate the TPM's EK does not match (as an interposer substituting its own would be):
  // the salt is encrypted to that key, the EK cannot decrypt it, StartAuthSession fails.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sextant-salt-'));
  try {
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=not this TPM', '-keyout', 'k.pem', '-outform', 'DER', '-out', 'c.der', '-days', '1'], { cwd: dir });
    const other = await readFile(path.join(dir, 'c.der'));
    await throughProxy(async (tpm, proxy) => {
      const secret = randomBytes(32);
      const error = await t.throwsAsync(
        tpm.withEkAndAk('rsa', (ek, ak) => tpm.activateCredential({ activate: ak, ek, ekCertificate: other, ...makeCredential({ ekPublic: ek.public, akName: ak.name, secret }) })),
      );
      t.true(error instanceof TpmResponseError && error.command === 'TPM2_StartAuthSession', String(error));
      t.false(proxy.exchanges.some((e) => e.code === TPM_CC.ActivateCredential), 'nothing was activated');
      t.deepEqual(await tpm.sessionHandles(), []);
      t.deepEqual(await tpm.transientHandles(), []);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
