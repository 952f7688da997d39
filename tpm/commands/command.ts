/**
 * TPM commands as data (go-tpm's direct API, Part 3 "Commands"): each command declares its
 * handle area, which handles need authorization, and its parameter and response structures as
 * codec values. `defineCommand` turns that into the complete wire request and a response
 * decoder; `execute` sends it through any byte transport and throws TpmResponseError.
 *
 * Framing (Part 1 §18): tag, commandSize, commandCode, handles, [authorizationSize,
 * authorizations], parameters; the response is tag, responseSize, responseCode, handles,
 * [parameterSize], parameters, [authorizations].
 */
import { fail } from '../../lib/errors.js';
import { marshal, Reader, unmarshal, u16, u32, u8, type Codec } from '../codec.js';
import { TPM_RH, TPM_ST } from '../constants.js';
import { isRetryable, TpmResponseError } from '../rc.js';
import { TPM2B_AUTH, TPM2B_NONCE } from '../structures.js';

/** Moves command bytes to a TPM and returns its response bytes (TCTI, socket, /dev/tpmrm0). */
export interface TpmTransport {
  send(command: Uint8Array): Promise<Uint8Array>;
}

/** TPMA_SESSION continueSession: keep a session open after the command. */
export const CONTINUE_SESSION = 0x01;

/**
 * One authorization for an auth handle: a password (TPM_RS_PW), or an existing session whose
 * HMAC the caller computed (empty for a policy session that needs no authValue).
 */
export type Authorization =
  | { password: Uint8Array }
  | { sessionHandle: number; nonceCaller?: Uint8Array; attributes?: number; hmac?: Uint8Array };

export interface TpmCommand<In, Out> {
  /** Spec name, e.g. "TPM2_Quote". */
  readonly name: string;
  readonly code: number;
  /** The complete command; auth handles default to an empty password. */
  encodeRequest(input: In, auth?: readonly Authorization[]): Uint8Array;
  /** Parses a complete response; a non-zero response code throws TpmResponseError. */
  decodeResponse(response: Uint8Array): Out;
}

export type HandlesOf<H extends string> = { [K in H]: number };

export interface CommandSpec<H extends string, P, RH extends string, R> {
  name: string;
  code: number;
  /** Names of the handle-area fields of the input, in order. */
  handles: readonly H[];
  /** How many of the leading handles need an authorization (Part 3 marks them "@"). */
  authHandles: number;
  parameters: Codec<P>;
  responseHandles: readonly RH[];
  response: Codec<R>;
}

function encodeAuthorization(a: Authorization): Uint8Array {
  if ('password' in a) {
    return Buffer.concat([marshal(u32, TPM_RH.PW), marshal(TPM2B_NONCE, new Uint8Array(0)), marshal(u8, 0), marshal(TPM2B_AUTH, a.password)]);
  }
  return Buffer.concat([
    marshal(u32, a.sessionHandle),
    marshal(TPM2B_NONCE, a.nonceCaller ?? new Uint8Array(0)),
    marshal(u8, a.attributes ?? CONTINUE_SESSION),
    marshal(TPM2B_AUTH, a.hmac ?? new Uint8Array(0)),
  ]);
}

export function defineCommand<H extends string, P, RH extends string, R>(
  spec: CommandSpec<H, P, RH, R>,
): TpmCommand<HandlesOf<H> & P, HandlesOf<RH> & R> {
  const encodeParameters = (input: HandlesOf<H> & P) => marshal(spec.parameters, input);
  return {
    name: spec.name,
    code: spec.code,
    encodeRequest(input, auth) {
      const handles = spec.handles.map((h) => marshal(u32, input[h] as number));
      const params = encodeParameters(input);
      let authArea: Uint8Array[] = [];
      if (spec.authHandles > 0) {
        const given = auth ?? [];
        if (given.length > spec.authHandles) fail('INVALID_ARGUMENT', `${spec.name} takes ${spec.authHandles} authorizations`);
        const all = Array.from({ length: spec.authHandles }, (_, i) => encodeAuthorization(given[i] ?? { password: new Uint8Array(0) }));
        const body = Buffer.concat(all);
        authArea = [marshal(u32, body.length), body];
      }
      const tag = spec.authHandles > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS;
      const rest = Buffer.concat([marshal(u32, spec.code), ...handles, ...authArea, params]);
      return Buffer.concat([marshal(u16, tag), marshal(u32, 2 + 4 + rest.length), rest]);
    },
    decodeResponse(response) {
      const r = new Reader(response);
      const [tag, size, rc] = r.within('response header', () => [u16.decode(r), u32.decode(r), u32.decode(r)]);
      if (size !== response.length) r.fail(`responseSize ${size} but ${response.length} bytes received`);
      if (rc !== 0) throw new TpmResponseError(spec.name, rc);
      const out: Record<string, unknown> = {};
      for (const h of spec.responseHandles) out[h] = r.within(h, () => u32.decode(r));
      let params: Uint8Array;
      if (tag === TPM_ST.SESSIONS) {
        const paramSize = u32.decode(r);
        params = r.take(paramSize); // the response authorizations follow; password sessions need no check
      } else if (tag === TPM_ST.NO_SESSIONS) {
        params = r.take(r.remaining);
      } else {
        return r.fail(`response tag 0x${tag.toString(16)}`);
      }
      return { ...out, ...unmarshal(spec.response, params) } as HandlesOf<RH> & R;
    },
  };
}

/** How often a command answered with a retryable warning is sent again. */
const MAX_RETRIES = 16;

/**
 * Sends one command and decodes its response. Warnings that ask for a resend (TPM_RC_RETRY,
 * YIELDED, TESTING, NV_RATE) are retried, as tpm2-tss does: swtpm answers TPM2_Quote with
 * TPM_RC_RETRY now and then.
 */
export async function execute<In, Out>(
  transport: TpmTransport,
  command: TpmCommand<In, Out>,
  input: In,
  auth?: readonly Authorization[],
): Promise<Out> {
  const request = command.encodeRequest(input, auth);
  for (let attempt = 0; ; attempt++) {
    try {
      return command.decodeResponse(await transport.send(request));
    } catch (e) {
      if (!(e instanceof TpmResponseError) || !isRetryable(e.rc) || attempt >= MAX_RETRIES) throw e;
      await new Promise((r) => setTimeout(r, Math.min(100, 5 * 2 ** attempt)));
    }
  }
}
