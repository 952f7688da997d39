/** The shape every `sextant <component> <verb>` command has; cli/main.ts does the rest. */

export interface OptionSpec {
  type: 'string' | 'boolean';
  description: string;
  /** Shown in --help as `--name VALUE`. */
  valueName?: string;
  multiple?: boolean;
  short?: string;
  default?: string | boolean | string[];
  /** cli/main.ts refuses the command (USAGE, exit 2) when the option is absent or empty. */
  required?: boolean;
  /** The only values accepted (each value, for a repeatable option); USAGE otherwise. */
  choices?: readonly string[];
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface CommandContext {
  values: OptionValues;
  positionals: string[];
  json: boolean;
  /** Progress and diagnostics: stderr, so stdout stays machine-readable. */
  log: (line: string) => void;
  /** Resolved when the user interrupts (SIGINT/SIGTERM); long-running commands watch it. */
  signal: AbortSignal;
}

export interface CommandSpec<R = unknown> {
  path: string[];
  summary: string;
  /**
   * Positional arguments as shown in usage, e.g. `FILE`, `OLD NEW`, `[FILE]`: also how many
   * cli/main.ts accepts (positionalCount), one a word, a word in brackets optional.
   */
  args?: string;
  description?: string;
  options?: Record<string, OptionSpec>;
  /** Only where `args` cannot say it; else positionalCount(args). */
  positionals?: { min: number; max: number };
  run(ctx: CommandContext): Promise<R>;
  /** Human-readable rendering; JSON output is `JSON.stringify(result)`. */
  render?(result: R, ctx: CommandContext): string;
  /** Exit code for a result that is not an error (default 0). */
  exitCode?(result: R): number;
}

/** How many positionals `args` names: `OLD NEW` 2..2, `[FILE]` 0..1, none 0..0. */
export function positionalCount(args: string | undefined): { min: number; max: number } {
  const words = (args ?? '').split(/\s+/).filter(Boolean);
  return { min: words.filter((w) => !w.startsWith('[')).length, max: words.length };
}

/** Typed accessors so commands read their options without casts everywhere. */
export function str(v: OptionValues, name: string): string | undefined {
  const x = v[name];
  return typeof x === 'string' ? x : undefined;
}
export function strs(v: OptionValues, name: string): string[] {
  const x = v[name];
  return Array.isArray(x) ? x : typeof x === 'string' ? [x] : [];
}
export function bool(v: OptionValues, name: string): boolean {
  return v[name] === true;
}
