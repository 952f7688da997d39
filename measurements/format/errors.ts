import { SextantError } from '../../lib/errors.js';

/** One invalid field: where it is (e.g. `pcrs.4.events[2].digest`) and what is wrong. */
export interface FieldIssue {
  path: string;
  message: string;
}

/** MEASUREMENTS_INVALID carrying every invalid field, so a user fixes them all in one go. */
export class MeasurementsInvalidError extends SextantError {
  readonly issues: FieldIssue[];

  constructor(what: string, issues: FieldIssue[]) {
    const shown = issues.slice(0, 20).map((i) => `${i.path}: ${i.message}`);
    if (issues.length > shown.length) shown.push(`... and ${issues.length - shown.length} more`);
    super({ code: 'MEASUREMENTS_INVALID', message: `${what}: ${shown.join('; ')}` });
    this.issues = issues;
  }
}

/** Collects field issues while a validator walks a value; throws them together at the end. */
export class IssueList {
  readonly issues: FieldIssue[] = [];

  add(path: string, message: string): void {
    this.issues.push({ path: path || '(top level)', message });
  }

  throwIfAny(what: string): void {
    if (this.issues.length > 0) throw new MeasurementsInvalidError(what, this.issues);
  }
}
