import test from 'ava';
import { checkNodeName, parseNodeInventory } from '../../keyservice/policy/node-name.js';

const EK = 'ab'.repeat(32);

test('node inventory: the listed TPM gets its name, another name or an unlisted EK is refused; no inventory accepts any name', (t) => {
  const inv = parseNodeInventory(JSON.stringify({ [EK]: 'worker-1' }), 'inv.json');
  t.notThrows(() => checkNodeName(inv, EK, 'worker-1'));
  t.throws(() => checkNodeName(inv, EK, 'worker-2'), { code: 'NODE_NAME_MISMATCH' } as never);
  t.throws(() => checkNodeName(inv, 'cd'.repeat(32), 'worker-1'), { code: 'NODE_UNKNOWN' } as never);
  t.notThrows(() => checkNodeName(undefined, EK, 'anything'));
});

test('a malformed inventory file is CONFIG_INVALID naming the bad entries', (t) => {
  t.throws(() => parseNodeInventory('not json', 'inv.json'), { code: 'CONFIG_INVALID' } as never);
  t.throws(() => parseNodeInventory('[]', 'inv.json'), { code: 'CONFIG_INVALID' } as never);
  const e = t.throws(() => parseNodeInventory(JSON.stringify({ [EK]: 'Worker_1', short: 'worker-2' }), 'inv.json'));
  t.is((e as { code?: string }).code, 'CONFIG_INVALID');
  t.regex(e!.message, /short/);
});
