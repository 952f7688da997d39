import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The checkout this code runs from (compiled to dist/mini/): the CLI, the image sources and .cache live there. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SEXTANT_BIN = path.join(REPO_ROOT, 'bin/sextant.js');
/** The guest's key service connections are relayed by this script (QEMU guestfwd). */
export const TCP_RELAY = path.join(REPO_ROOT, 'dist/mini/tcp-relay.js');
