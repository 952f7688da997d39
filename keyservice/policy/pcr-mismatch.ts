import { SextantError } from '../../lib/errors.js';

export interface PcrMismatch {
  pcr: number;
  expected: string;
  observed: string;
}

/** MEASUREMENTS_MISMATCH carrying every enforced PCR that differs (not only the first). */
export class PcrMismatchError extends SextantError {
  constructor(
    readonly mismatches: PcrMismatch[],
    setLabels: string[],
  ) {
    super({
      code: 'MEASUREMENTS_MISMATCH',
      message:
        `enforced PCR${mismatches.length > 1 ? 's' : ''} ${mismatches.map((m) => m.pcr).join(', ')} differ from ${setLabels.join(' and ')}: ` +
        mismatches.map((m) => `PCR ${m.pcr} expected ${m.expected}, quoted ${m.observed}`).join('; '),
    });
  }
}
