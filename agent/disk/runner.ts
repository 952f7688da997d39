import { run } from '../../lib/exec.js';

/**
 * How the disk code reaches external tools: lib/exec.ts `run` in production; tests wrap it
 * (fault injection: throw after the Nth call) or record calls.
 */
export type Runner = typeof run;

export const defaultRunner: Runner = run;
