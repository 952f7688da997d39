import { SextantError } from '../lib/errors.js';
import { IMAGE_VERSION_RE } from './admin/protocol.js';

/**
 * Image versions as a rollout orders them: dotted numeric (`1.10.0` > `1.9.3`), an optional
 * leading `v`, missing components are zero (`2` = `2.0` = `2.0.0`). Anything else is refused
 * with MEASUREMENTS_VERSION_INVALID: a set whose place in the order is unknown cannot be
 * checked against the high-water mark.
 */
export function parseImageVersion(v: string): number[] {
  if (!IMAGE_VERSION_RE.test(v)) {
    throw new SextantError({ code: 'MEASUREMENTS_VERSION_INVALID', message: `image version ${JSON.stringify(v.slice(0, 40))} is not dotted numeric (1.2.3, optionally v1.2.3, up to 8 components): a rollout cannot order it` });
  }
  return v.replace(/^v/, '').split('.').map(Number);
}

/** <0, 0 or >0 as a is older than, the same as or newer than b. */
export function compareImageVersions(a: string, b: string): number {
  const x = parseImageVersion(a);
  const y = parseImageVersion(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
