import test from 'ava';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { FAILURE_ERROR_CODES, INPUT_ERROR_CODES } from '../../../lib/errors.js';
import { REPO_ROOT } from '../../helpers/paths.js';

test('every SNP_* code is raised in attestation/snp/ and documented in docs/attestation-snp.md', async (t) => {
  const dir = path.join(REPO_ROOT, 'attestation/snp');
  const source = (await Promise.all((await readdir(dir)).filter((f) => f.endsWith('.ts')).map((f) => readFile(path.join(dir, f), 'utf8')))).join('\n');
  const docs = await readFile(path.join(REPO_ROOT, 'docs/attestation-snp.md'), 'utf8');
  const codes = [...INPUT_ERROR_CODES, ...FAILURE_ERROR_CODES].filter((c) => c.startsWith('SNP_'));
  t.true(codes.length >= 20);
  for (const c of codes) {
    t.true(source.includes(`'${c}'`), `${c} is raised`);
    t.true(docs.includes('`' + c + '`'), `${c} is documented`);
  }
});
