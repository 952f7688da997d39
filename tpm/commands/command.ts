/**
 * TPM commands as data (go-tpm's direct API, Part 3 "Commands"): each command declares its
 * handle area, which handles need authorization, and its parameter and response structures as
 * codec values. `defineCommand` turns that into the complete wire request and a response
 * decoder; `execute` sends it through any byte transport, runs the sessions (HMACs,
 * parameter encryption, the response HMAC check) and throws TpmResponseError.
 *
 * Framing (Part 1 §18): tag, commandSize, commandCode, handles, [authorizationSize,
 * authorizations], parameters; the response is tag, responseSize, responseCode, handles,
 * [parameterSize], parameters, [authorizations].
 */
import { fail, SextantError } from '../../lib/errors.js';
import { marshal, Reader, unmarshal, u16, u32, u8, type Codec } from '../codec.js';
import { TPM_HT, TPM_RH, TPM_ST } from '../constants.js';
import { isRetryable, TpmResponseError } from '../rc.js';
import { cpHash, rpHash } from '../session/crypto.js';
import type { HmacSession, SessionUse } from '../session/session.js';
import { TPM2B_AUTH, TPM2B_NONCE } from '../structures.js';

/** Moves command bytes to a TPM and returns its response bytes (TCTI, socket, /dev/tpmrm0). */
export interface TpmTransport {
  send(command: Uint8Array): Promise<Uint8Array>;
}

/** TPMA_SESSION continueSession: keep a session open after the command. */
export const CONTINUE_SESSION = 0x01;

/**
 * One authorization for an auth handle: a password (TPM_RS_PW); an existing session given
 * as raw fields (a policy session that needs no HMAC); or an HMAC session, which computes the
 * command HMAC, checks the response HMAC and encrypts the first parameter as `use` asks.
 */
export type Authorization =
  | { password: Uint8Array }
  | { sessionHandle: number; nonceCaller?: Uint8Array; attributes?: number; hmac?: Uint8Array }
  | { session: HmacSession; use?: SessionUse; authValue?: Uint8Array };

export interface ExecuteOptions {
  /**
   * Names of the command's handles, in order (cpHash covers them): needed for transient
   * objects and NV indices when an HMAC session authorizes. A PCR's or a permanent handle's
   * Name is the handle itself.
   */
  names?: readonly (Uint8Array | undefined)[];
}

export interface TpmCommand<In, Out> {
  /** Spec name, e.g. "TPM2_Quote". */
  readonly name: string;
  readonly code: number;
  /** The complete command with password or raw-session authorizations (default: empty passwords). */
  encodeRequest(input: In, auth?: readonly Authorization[]): Uint8Array;
  /** Parses a complete response without sessions to check; a non-zero code throws TpmResponseError. */
  decodeResponse(response: Uint8Array): Out;
  /** @internal the pieces `execute` frames itself. */
  readonly frame: CommandFrame<In, Out>;
}

interface CommandFrame<In, Out> {
  authHandles: number;
  handles(input: In): number[];
  parameters(input: In): Uint8Array;
  responseHandles: number;
  decode(handles: number[], parameters: Uint8Array): Out;
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

function authEntry(handle: number, nonce: Uint8Array, attributes: number, hmac: Uint8Array): Uint8Array {
  return Buffer.concat([marshal(u32, handle), marshal(TPM2B_NONCE, nonce), marshal(u8, attributes), marshal(TPM2B_AUTH, hmac)]);
}

export function defineCommand<H extends string, P, RH extends string, R>(
  spec: CommandSpec<H, P, RH, R>,
): TpmCommand<HandlesOf<H> & P, HandlesOf<RH> & R> {
  type In = HandlesOf<H> & P;
  type Out = HandlesOf<RH> & R;
  const frame: CommandFrame<In, Out> = {
    authHandles: spec.authHandles,
    handles: (input) => spec.handles.map((h) => input[h] as number),
    parameters: (input) => marshal(spec.parameters, input),
    responseHandles: spec.responseHandles.length,
    decode(handles, parameters) {
      const out: Record<string, unknown> = {};
      spec.responseHandles.forEach((h, i) => (out[h] = handles[i]));
      return { ...out, ...unmarshal(spec.response, parameters) } as Out;
    },
  };
  const command: TpmCommand<In, Out> = {
    name: spec.name,
    code: spec.code,
    frame,
    encodeRequest(input, auth) {
      return prepare(command, input, auth ?? [], {}).request;
    },
    decodeResponse(response) {
      return finish(command, { request: new Uint8Array(0), sessions: [] }, response);
    },
  };
  return command;
}

/** One HMAC session's part in one exchange. */
interface SessionSlot {
  session: HmacSession;
  authValue: Uint8Array;
  attributes: number;
  encrypt: boolean;
}

interface Prepared {
  request: Uint8Array;
  /** Per authorization: the HMAC session to check the response with, if any. */
  sessions: (SessionSlot | undefined)[];
}

const empty = new Uint8Array(0);

/** The Name a handle has without asking the TPM (Part 1 §16: PCRs, permanent handles, sessions). */
function implicitName(handle: number): Uint8Array | undefined {
  const type = handle >>> 24;
  return type === TPM_HT.PCR || type === TPM_HT.PERMANENT || type === TPM_HT.HMAC_SESSION || type === TPM_HT.POLICY_SESSION ? marshal(u32, handle) : undefined;
}

/** The first parameter's data (after its 2-byte size), replaced by `f(data)`. */
function mapFirstParameter(parameters: Uint8Array, f: (data: Uint8Array) => Uint8Array, what: string): Uint8Array {
  if (parameters.length < 2) fail('INTERNAL', `${what}: no sized first parameter to encrypt`);
  const size = (parameters[0] << 8) | parameters[1];
  if (2 + size > parameters.length) fail('TPM_UNMARSHAL', `${what}: first parameter size ${size} exceeds the ${parameters.length - 2} bytes there`);
  const out = Uint8Array.from(parameters);
  out.set(f(parameters.subarray(2, 2 + size)), 2);
  return out;
}

function prepare<In, Out>(command: TpmCommand<In, Out>, input: In, auth: readonly Authorization[], opts: ExecuteOptions): Prepared {
  const { frame } = command;
  if (auth.length > frame.authHandles) fail('INVALID_ARGUMENT', `${command.name} takes ${frame.authHandles} authorizations`);
  const handles = frame.handles(input);
  let parameters = frame.parameters(input);
  const given = Array.from({ length: frame.authHandles }, (_, i): Authorization => auth[i] ?? { password: empty });

  // Nonces first (the encryption key depends on nonceCaller), then the encrypted parameter
  // (cpHash covers the parameters as sent), then the HMACs.
  const slots = given.map((a): SessionSlot | undefined => {
    if (!('session' in a)) return undefined;
    const { attributes } = a.session.begin(a.use ?? {});
    return { session: a.session, authValue: a.authValue ?? empty, attributes, encrypt: a.use?.encrypt ?? false };
  });
  const decrypting = given.flatMap((a, i) => ('session' in a && a.use?.decrypt ? [slots[i]!] : []));
  if (decrypting.length > 1 || slots.filter((s) => s?.encrypt).length > 1) fail('INTERNAL', `${command.name}: at most one session may encrypt each direction`);
  if (decrypting[0]) parameters = mapFirstParameter(parameters, (d) => decrypting[0].session.encryptCommandParameter(d, decrypting[0].authValue), command.name);

  let names: Uint8Array[] | undefined;
  const nameList = (): Uint8Array[] =>
    (names ??= handles.map((h, i) => opts.names?.[i] ?? implicitName(h) ?? fail('INTERNAL', `${command.name}: an HMAC session needs the Name of handle 0x${h.toString(16)}`)));
  const entries = given.map((a, i) => {
    if ('password' in a) return authEntry(TPM_RH.PW, empty, 0, a.password);
    if ('sessionHandle' in a) return authEntry(a.sessionHandle, a.nonceCaller ?? empty, a.attributes ?? CONTINUE_SESSION, a.hmac ?? empty);
    const slot = slots[i]!;
    const alg = slot.session.alg;
    const hmac = slot.session.commandHmac(cpHash(alg, command.code, nameList(), parameters), slot.attributes, slot.authValue);
    return authEntry(slot.session.handle, slot.session.currentNonceCaller, slot.attributes, hmac);
  });

  const authArea = frame.authHandles > 0 ? [marshal(u32, entries.reduce((n, e) => n + e.length, 0)), ...entries] : [];
  const tag = frame.authHandles > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS;
  const rest = Buffer.concat([marshal(u32, command.code), ...handles.map((h) => marshal(u32, h)), ...authArea, parameters]);
  return { request: Buffer.concat([marshal(u16, tag), marshal(u32, 2 + 4 + rest.length), rest]), sessions: slots };
}

function finish<In, Out>(command: TpmCommand<In, Out>, prepared: Prepared, response: Uint8Array): Out {
  const r = new Reader(response);
  const [tag, size, rc] = r.within('response header', () => [u16.decode(r), u32.decode(r), u32.decode(r)]);
  if (size !== response.length) r.fail(`responseSize ${size} but ${response.length} bytes received`);
  if (rc !== 0) throw new TpmResponseError(command.name, rc);
  const handles = Array.from({ length: command.frame.responseHandles }, () => r.within('response handle', () => u32.decode(r)));
  let parameters: Uint8Array;
  if (tag === TPM_ST.SESSIONS) {
    parameters = r.take(u32.decode(r));
    const slots = prepared.sessions;
    // One TPMS_AUTH_RESPONSE per authorization sent: a missing one is a malformed response.
    for (let i = 0; i < slots.length; i++) {
      const [nonceTPM, attributes, hmac] = r.within('response authorization', () => [TPM2B_NONCE.decode(r), u8.decode(r), TPM2B_AUTH.decode(r)] as const);
      const slot = slots[i];
      if (slot) {
        const alg = slot.session.alg;
        slot.session.checkResponse(rpHash(alg, rc, command.code, parameters), nonceTPM, attributes, hmac, slot.authValue, command.name);
      }
    }
    const encrypting = slots.find((s) => s?.encrypt);
    if (encrypting) parameters = mapFirstParameter(parameters, (d) => encrypting.session.decryptResponseParameter(d, encrypting.authValue), command.name);
  } else if (tag === TPM_ST.NO_SESSIONS) {
    if (prepared.sessions.some((s) => s)) {
      throw new SextantError({ code: 'TPM_RESPONSE_HMAC_INVALID', message: `${command.name}: the response carries no session area although HMAC sessions were used` });
    }
    parameters = r.take(r.remaining);
  } else {
    return r.fail(`response tag 0x${tag.toString(16)}`);
  }
  return command.frame.decode(handles, parameters);
}

/** How often a command answered with a retryable warning is sent again. */
const MAX_RETRIES = 16;

/**
 * Sends one command and decodes its response. Warnings that ask for a resend (TPM_RC_RETRY,
 * YIELDED, TESTING, NV_RATE) are retried, as tpm2-tss does: swtpm answers TPM2_Quote with
 * TPM_RC_RETRY now and then. A warning leaves the sessions' nonces as they were, so the same
 * bytes are sent again.
 */
export async function execute<In, Out>(
  transport: TpmTransport,
  command: TpmCommand<In, Out>,
  input: In,
  auth?: readonly Authorization[],
  opts: ExecuteOptions = {},
): Promise<Out> {
  const prepared = prepare(command, input, auth ?? [], opts);
  for (let attempt = 0; ; attempt++) {
    try {
      return finish(command, prepared, await transport.send(prepared.request));
    } catch (e) {
      if (!(e instanceof TpmResponseError) || !isRetryable(e.rc) || attempt >= MAX_RETRIES) throw e;
      await new Promise((r) => setTimeout(r, Math.min(100, 5 * 2 ** attempt)));
    }
  }
}
