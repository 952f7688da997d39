import { readFile } from 'node:fs/promises';
import type { HashAlg } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import type { PcrPrediction } from '../format/prediction.js';
import { peSignature } from '../pe/signature.js';
import { readKeyFolder, type KeyDatabases } from './key-folder.js';
import { predictPcr7, type Pcr7Prediction } from './pcr7.js';
import { keysInVarstore } from './sb-vars.js';

/** Where the firmware's key databases come from: a key folder (Secure Boot on) or an OVMF variable store. */
export type SecureBootSource = { keysDir: string } | { varsFile: string };

export interface SecureBootState {
  keys: KeyDatabases;
  secureBoot: boolean;
  /** What it was read from, for output. */
  source: string;
}

export async function loadSecureBootState(src: SecureBootSource): Promise<SecureBootState> {
  if ('keysDir' in src) return { keys: await readKeyFolder(src.keysDir), secureBoot: true, source: src.keysDir };
  let fd: Buffer;
  try {
    fd = await readFile(src.varsFile);
  } catch (cause) {
    throw new SextantError({ code: 'FILE_NOT_FOUND', message: `cannot read ${src.varsFile}: ${(cause as Error).message}`, cause });
  }
  const { keys, secureBootEnabled } = keysInVarstore(fd);
  return { keys, secureBoot: secureBootEnabled, source: src.varsFile };
}

/** PCR 7 for booting `ukiBytes` under `state`, from the UKI's own Authenticode signature. */
export function predictUkiPcr7(ukiBytes: Uint8Array, state: SecureBootState, bank: HashAlg): Pcr7Prediction {
  return predictPcr7(state.keys, { secureBoot: state.secureBoot, signature: state.secureBoot ? peSignature(ukiBytes) : undefined, bank });
}

/** A UKI prediction with PCR 7 added (value and events), keeping the other PCRs as they are. */
export function withPcr7<P extends PcrPrediction>(prediction: P, pcr7: Pcr7Prediction): P {
  return { ...prediction, pcrs: { ...prediction.pcrs, 7: pcr7.value }, events: [...pcr7.events, ...prediction.events] };
}
