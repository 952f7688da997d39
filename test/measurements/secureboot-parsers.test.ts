import test from 'ava';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { SextantError } from '../../lib/errors.js';
import { parsePe } from '../../measurements/pe/parse.js';
import { peSignature } from '../../measurements/pe/signature.js';
import { decodeSignatureLists, encodeSignatureLists, type SignatureEntry } from '../../measurements/secureboot/signature-list.js';
import { readVarstore, writeVarstore } from '../../measurements/secureboot/varstore.js';
import { EFI_GLOBAL_VARIABLE } from '../../measurements/secureboot/guid.js';
import { HOST_STUB } from '../helpers/uki.js';

const TEMPLATE = '/usr/share/OVMF/OVMF_VARS_4M.fd';

function onlyTyped(codes: string[], fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    return e instanceof SextantError && codes.includes(e.code);
  }
}

test('signature lists: SHA-256 entries round-trip; random and mutated bytes only raise SB_KEYS_INVALID', (t) => {
  const entry = fc.record({ owner: fc.uint8Array({ minLength: 16, maxLength: 16 }), data: fc.uint8Array({ minLength: 32, maxLength: 32 }) });
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 20 }), (es) => {
        const entries: SignatureEntry[] = es.map((e) => ({ kind: 'sha256', type: '', owner: Buffer.from(e.owner), data: Buffer.from(e.data) }));
        const back = decodeSignatureLists(encodeSignatureLists(entries));
        return back.length === entries.length && back.every((b, i) => b.data.equals(entries[i].data) && b.owner.equals(entries[i].owner));
      }),
    ),
  );
  const valid = encodeSignatureLists([{ kind: 'sha256', type: '', owner: Buffer.alloc(16, 1), data: Buffer.alloc(32, 2) }]);
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }), (junk, at, byte) => {
        const mutated = Buffer.from(valid);
        mutated[at] = byte;
        return onlyTyped(['SB_KEYS_INVALID'], () => decodeSignatureLists(Buffer.from(junk))) && onlyTyped(['SB_KEYS_INVALID'], () => decodeSignatureLists(mutated));
      }),
      { numRuns: 3000 },
    ),
  );
});

test('variable store: what writeVarstore writes, readVarstore reads back; mutated stores only raise VARSTORE_INVALID', (t) => {
  const template = readFileSync(TEMPLATE);
  const v = { vendor: EFI_GLOBAL_VARIABLE, name: 'PK', attributes: 0x27, timestamp: Buffer.alloc(16), data: Buffer.from('sextant') };
  const fd = writeVarstore(template, [v]);
  t.is(fd.length, template.length);
  t.deepEqual(readVarstore(fd).map((x) => [x.name, x.data.toString()]), [['PK', 'sextant']]);
  t.deepEqual(writeVarstore(template, [v]), fd, 'deterministic');
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.nat(0x200), fc.integer({ min: 0, max: 255 }), (at, byte) => {
        const m = Buffer.from(fd);
        m[at] = byte;
        return onlyTyped(['VARSTORE_INVALID'], () => readVarstore(m));
      }),
      { numRuns: 3000 },
    ),
  );
  t.throws(() => readVarstore(Buffer.alloc(4096)), { code: 'VARSTORE_INVALID' });
});

test('PE signatures: an unsigned PE has none; a random certificate table only raises typed errors', (t) => {
  const stub = readFileSync(HOST_STUB);
  t.is(peSignature(stub), undefined, "Debian's unsigned stub");
  const parsed = parsePe(stub);
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), (junk) => {
        // The stub with random bytes as its certificate table.
        const bytes = Buffer.concat([stub, Buffer.from(junk)]);
        const pe = { ...parsed, certificateTable: { offset: stub.length, size: junk.length } };
        return onlyTyped(['PE_SIGNATURE_INVALID'], () => peSignature(bytes, pe));
      }),
      { numRuns: 2000 },
    ),
  );
});
