import test from 'ava';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { FAILURE_ERROR_CODES, INPUT_ERROR_CODES } from '../../../lib/errors.js';
import { REPO_ROOT } from '../../helpers/paths.js';

test('every SNP_* code is raised in attestation/snp/ (or, collecting the evidence, agent/attest/snp-evidence.ts) and documented in docs/attestation-snp.md', async (t) => {
  const dir = path.join(REPO_ROOT, 'attestation/snp');
  // The verifier's codes live in attestation/snp/; the node's collection of the evidence in agent/.
  const files = [...(await readdir(dir)).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f)), path.join(REPO_ROOT, 'agent/attest/snp-evidence.ts')];
  const source = (await Promise.all(files.map((f) => readFile(f, 'utf8')))).join('\n');
  const docs = await readFile(path.join(REPO_ROOT, 'docs/attestation-snp.md'), 'utf8');
  const codes = [...INPUT_ERROR_CODES, ...FAILURE_ERROR_CODES].filter((c) => c.startsWith('SNP_'));
  t.true(codes.length >= 20);
  for (const c of codes) {
    t.true(source.includes(`'${c}'`), `${c} is raised`);
    t.true(docs.includes('`' + c + '`'), `${c} is documented`);
  }
});
