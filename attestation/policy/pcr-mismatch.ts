import { SextantError } from '../../lib/errors.js';

export interface PcrMismatch {
  pcr: number;
  expected: string;
  observed: string;
}

/** `enforced PCRs 4, 11 differ from LABEL`: which PCRs, short enough to lead any message. */
function mismatchSummary(mismatches: readonly PcrMismatch[], setLabels: readonly string[]): string {
  return `enforced PCR${mismatches.length > 1 ? 's' : ''} ${mismatches.map((m) => m.pcr).join(', ')} differ from ${setLabels.join(' and ')}`;
}

function mismatchValues(mismatches: readonly PcrMismatch[]): string {
  return mismatches.map((m) => `PCR ${m.pcr} expected ${m.expected}, quoted ${m.observed}`).join('; ');
}

/** MEASUREMENTS_MISMATCH carrying every enforced PCR that differs (not only the first). */
export class PcrMismatchError extends SextantError {
  constructor(
    readonly mismatches: PcrMismatch[],
    readonly setLabels: string[],
  ) {
    super({ code: 'MEASUREMENTS_MISMATCH', message: `${mismatchSummary(mismatches, setLabels)}: ${mismatchValues(mismatches)}` });
  }

  /**
   * The message with the changed components named right after the PCRs, before the long hex
   * values: audit reasons and console lines are cut (at 512 characters), and the components
   * are what an operator needs (three PCR values alone are ~450 characters).
   */
  withComponents(named: string): string {
    return `${mismatchSummary(this.mismatches, this.setLabels)}; changed components: ${named}; ${mismatchValues(this.mismatches)}`;
  }
}
