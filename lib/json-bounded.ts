import { SextantError } from './errors.js';

/**
 * JSON.parse behind a nesting bound. The depth is counted in one pass over the text before
 * it is parsed (brackets outside strings), so `[[[[...` 100,000 deep costs one linear scan
 * and never reaches the parser or any recursive code after it (JSON.stringify of such a
 * value overflows the stack: that crashed the key service's audit writer). JSON.parse makes
 * `__proto__` an ordinary own key, never a prototype; the closed schemas then refuse it.
 */

export const DEFAULT_MAX_DEPTH = 16;

function invalid(message: string): never {
  throw new SextantError({ code: 'PROTOCOL_INVALID', message });
}

/** The deepest bracket nesting of a JSON text (strings skipped); stops counting past `limit`. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

export function parseJsonBounded(text: string, maxDepth = DEFAULT_MAX_DEPTH): unknown {
  if (jsonDepth(text, maxDepth) > maxDepth) invalid(`JSON nested deeper than ${maxDepth} levels`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return invalid('request body is not JSON');
  }
}
