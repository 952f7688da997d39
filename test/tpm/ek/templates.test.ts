import test from 'ava';
import { fixturePublic, fixture } from '../fixtures.js';
import { TPM_ALG } from '../../../tpm/constants.js';
import { akTemplate, ekTemplateEccP256, ekTemplateRsa2048 } from '../../../tpm/ek/templates.js';
import { objectName } from '../../../tpm/name.js';
import { marshal } from '../../../tpm/codec.js';
import { TPMT_PUBLIC } from '../../../tpm/structures.js';

// tpm2_createek on swtpm uses the EK Credential Profile templates: the EK it made must equal our
// template in every field but the key itself (unique).
test('RSA EK made by tpm2_createek equals template L-1 except unique', (t) => {
  const ek = fixturePublic('ek-rsa.pub').value;
  if (ek.type !== TPM_ALG.RSA) return t.fail();
  t.deepEqual({ ...ek, unique: null }, { ...ekTemplateRsa2048(), unique: null });
  t.is(ek.unique.length, 256);
  t.deepEqual(Buffer.from(objectName(fixturePublic('ek-rsa.pub'))), fixture('ek-rsa.name'));
});

test('ECC EK made by tpm2_createek equals template L-2 except unique', (t) => {
  const ek = fixturePublic('ek-ecc.pub').value;
  if (ek.type !== TPM_ALG.ECC) return t.fail();
  t.deepEqual({ ...ek, unique: null }, { ...ekTemplateEccP256(), unique: null });
  t.deepEqual(Buffer.from(objectName(fixturePublic('ek-ecc.pub'))), fixture('ek-ecc.name'));
});

test('AK template equals the attributes and scheme of the AK tpm2-tools made for the fixtures', (t) => {
  const ak = fixturePublic('ak-ecc.pub').value;
  if (ak.type !== TPM_ALG.ECC) return t.fail();
  t.deepEqual({ ...ak, unique: null }, { ...akTemplate(), unique: null });
  // Templates are fresh values each call, so callers can mutate them safely.
  const a = ekTemplateRsa2048();
  a.unique[0] = 1;
  t.is(ekTemplateRsa2048().unique[0], 0);
  t.is(marshal(TPMT_PUBLIC, akTemplate()).length > 0, true);
});
