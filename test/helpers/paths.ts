import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** Repository root (tests run from dist/test/..., fixtures live in the source tree). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURES = path.join(REPO_ROOT, 'test/fixtures');
export const SEXTANT_BIN = path.join(REPO_ROOT, 'bin/sextant.js');
