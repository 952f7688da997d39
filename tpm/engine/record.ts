/**
 * Recorded command/response pairs, for unit tests of the client without a TPM: record an
 * exchange on swtpm once (`RecordingTransport`), commit the pairs as a fixture, replay them
 * (`ReplayTransport`). Replay answers only the exact command that was recorded, in order, so
 * a change in what the client sends fails the test instead of getting a stale answer.
 */
import { SextantError } from '../../lib/errors.js';
import type { TpmTransport } from '../commands/command.js';

export interface RecordedExchange {
  /** Hex of the command bytes. */
  command: string;
  /** Hex of the response bytes. */
  response: string;
}

export class RecordingTransport implements TpmTransport {
  readonly exchanges: RecordedExchange[] = [];

  constructor(private readonly inner: TpmTransport) {}

  async send(command: Uint8Array): Promise<Uint8Array> {
    const response = await this.inner.send(command);
    this.exchanges.push({ command: Buffer.from(command).toString('hex'), response: Buffer.from(response).toString('hex') });
    return response;
  }
}

export class ReplayTransport implements TpmTransport {
  private next = 0;

  constructor(private readonly exchanges: readonly RecordedExchange[]) {}

  async send(command: Uint8Array): Promise<Uint8Array> {
    const i = this.next++;
    const expected = this.exchanges[i];
    const got = Buffer.from(command).toString('hex');
    if (!expected) throw new SextantError({ code: 'INTERNAL', message: `replay: command ${i + 1} was not recorded (${got.slice(0, 40)}...)` });
    if (expected.command !== got) {
      throw new SextantError({ code: 'INTERNAL', message: `replay: command ${i + 1} differs from the recording (code 0x${got.slice(12, 20)}, recorded 0x${expected.command.slice(12, 20)})` });
    }
    return Buffer.from(expected.response, 'hex');
  }

  /** True when every recorded exchange was replayed. */
  get done(): boolean {
    return this.next === this.exchanges.length;
  }
}
