import { SextantError } from '../lib/errors.js';
import type { OptionValues } from './command.js';

export function requireStr(v: OptionValues, name: string): string {
  const x = v[name];
  if (typeof x !== 'string' || x === '') {
    throw new SextantError({ code: 'USAGE', message: `--${name} is required` });
  }
  return x;
}

/** Parses `0-7,9,11` into a sorted list of PCR indices. */
export function parsePcrList(s: string, max = 23): number[] {
  const out = new Set<number>();
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new SextantError({ code: 'USAGE', message: `bad PCR list "${s}" (expected e.g. 0-7,9,11)` });
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a > b || b > max) throw new SextantError({ code: 'USAGE', message: `bad PCR range "${part}" (PCRs are 0-${max})` });
    for (let i = a; i <= b; i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}
