import test from 'ava';
import fc from 'fast-check';
import { isSextantError } from '../../lib/errors.js';
import { activateCredential } from '../../tpm/commands/activate-credential.js';
import type { TpmCommand } from '../../tpm/commands/command.js';
import { createPrimary } from '../../tpm/commands/create-primary.js';
import { getCapability } from '../../tpm/commands/get-capability.js';
import { pcrRead } from '../../tpm/commands/pcr-read.js';
import { quote } from '../../tpm/commands/quote.js';
import { TPM_ALG, TPM_RH } from '../../tpm/constants.js';
import { pcrSelection } from '../../tpm/pcr-selection.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

// Known answer, worked out from Part 1 §18 and Part 3 §18.4: TPM_ST_SESSIONS, size, TPM_CC_Quote,
// signHandle, authorizationSize 9 with an empty password session, then the parameters.
test('TPM2_Quote request bytes', (t) => {
  const bytes = quote.encodeRequest({
    signHandle: 0x80000000,
    qualifyingData: Uint8Array.of(0xaa, 0xbb),
    inScheme: { scheme: TPM_ALG.NULL },
    PCRselect: pcrSelection({ sha256: [0, 1] }),
  });
  t.is(Buffer.from(bytes).readUInt32BE(2), bytes.length); // commandSize counts every byte (43)
  t.is(
    hex(bytes),
    '8002' + '0000002b' + '00000158' + '80000000' + '00000009' + '40000009' + '0000' + '00' + '0000' +
      '0002aabb' + '0010' + '00000001' + '000b' + '03' + '030000',
  );
});

test('a response with a non-zero code is TPM_RC; a truncated one TPM_UNMARSHAL', (t) => {
  t.throws(() => pcrRead.decodeResponse(Buffer.from('80010000000a0000018b', 'hex')), { code: 'TPM_RC' });
  t.throws(() => pcrRead.decodeResponse(Buffer.from('8001000000', 'hex')), { code: 'TPM_UNMARSHAL' });
  t.throws(() => pcrRead.decodeResponse(Buffer.from('80010000000c00000000', 'hex')), { code: 'TPM_UNMARSHAL' });
});

const COMMANDS = [quote, pcrRead, createPrimary, getCapability, activateCredential] as TpmCommand<unknown, unknown>[];

test('fast-check: decoding arbitrary responses throws only TPM_RC or TPM_UNMARSHAL', (t) => {
  const response = fc
    .tuple(fc.constantFrom(0x8001, 0x8002, 0x1234), fc.constantFrom(0, 0x101, 0x9a2), fc.uint8Array({ maxLength: 200 }))
    .map(([tag, rc, body]) => {
      const b = Buffer.alloc(10 + body.length);
      b.writeUInt16BE(tag, 0);
      b.writeUInt32BE(b.length, 2);
      b.writeUInt32BE(rc, 6);
      Buffer.from(body).copy(b, 10);
      return b;
    });
  fc.assert(
    fc.property(fc.oneof(response, fc.uint8Array({ maxLength: 64 })), (bytes) => {
      for (const c of COMMANDS) {
        try {
          c.decodeResponse(bytes);
        } catch (e) {
          if (!isSextantError(e, 'TPM_RC') && !isSextantError(e, 'TPM_UNMARSHAL')) throw e;
        }
      }
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

test('too many authorizations are refused before anything is sent', (t) => {
  t.throws(
    () =>
      createPrimary.encodeRequest(
        {
          primaryHandle: TPM_RH.OWNER,
          inSensitive: { value: { userAuth: new Uint8Array(0), data: new Uint8Array(0) } },
          inPublic: { value: { type: TPM_ALG.KEYEDHASH, nameAlg: TPM_ALG.SHA256, objectAttributes: 0, authPolicy: new Uint8Array(0), parameters: { scheme: { scheme: TPM_ALG.NULL } }, unique: new Uint8Array(0) } },
          outsideInfo: new Uint8Array(0),
          creationPCR: [],
        },
        [{ password: new Uint8Array(0) }, { password: new Uint8Array(0) }],
      ),
    { code: 'INVALID_ARGUMENT' },
  );
});
