import { parseArgs } from 'node:util';
import { SextantError, isSextantError } from '../lib/errors.js';
import { positionalCount, type CommandContext, type CommandSpec, type OptionSpec } from './command.js';
import { commandsFor } from './registry.js';
import { COMMAND_SUMMARIES, type CommandSummary } from './summaries.js';

const COMMON: Record<string, OptionSpec> = {
  help: { type: 'boolean', short: 'h', description: 'show this help' },
  json: { type: 'boolean', description: 'print the result as JSON on stdout' },
};

/** Imports only the module of argv[0]'s commands (cli/registry.ts). */
async function findCommand(argv: string[]): Promise<{ cmd: CommandSpec; rest: string[] } | undefined> {
  let best: CommandSpec | undefined;
  for (const c of await commandsFor(argv[0])) {
    if (c.path.every((p, i) => argv[i] === p) && (!best || c.path.length > best.path.length)) best = c;
  }
  return best && { cmd: best, rest: argv.slice(best.path.length) };
}

export function commandHelp(cmd: CommandSpec): string {
  const opts = { ...cmd.options, ...COMMON };
  const lines = [`usage: sextant ${cmd.path.join(' ')}${cmd.args ? ' ' + cmd.args : ''} [options]`, '', cmd.summary];
  if (cmd.description) lines.push('', cmd.description.trim());
  lines.push('', 'options:');
  for (const [name, o] of Object.entries(opts)) {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.valueName ?? (o.choices ? o.choices.join('|') : 'VALUE')}` : ''}`;
    const def = o.default !== undefined && o.default !== false ? ` (default: ${String(o.default)})` : '';
    lines.push(`  ${flag.padEnd(34)} ${o.description}${o.required ? ' (required)' : ''}${o.multiple ? ' (repeatable)' : ''}${def}`);
  }
  return lines.join('\n') + '\n';
}

/** The command list, from the generated summaries: no command module is imported. */
export function topHelp(prefix: string[] = [], summaries: readonly CommandSummary[] = COMMAND_SUMMARIES): string {
  const cmds = summaries.filter((c) => prefix.every((p, i) => c.path[i] === p));
  const lines = ['usage: sextant <component> <verb> [options]   (every command takes --help and --json)', '', 'commands:'];
  for (const c of cmds) lines.push(`  ${(c.path.join(' ') + (c.args ? ' ' + c.args : '')).padEnd(40)} ${c.summary}`);
  return lines.join('\n') + '\n';
}

/** `required` and `choices` of the command's options: the first violation, or undefined. */
export function checkOptionValues(cmd: CommandSpec, values: CommandContext['values']): string | undefined {
  for (const [name, o] of Object.entries(cmd.options ?? {})) {
    const v = values[name];
    const given = v === undefined || v === false || v === '' ? [] : Array.isArray(v) ? v : [v];
    if (o.required && given.length === 0) return `--${name} is required`;
    const wrong = o.choices && given.find((x) => typeof x === 'string' && !o.choices!.includes(x));
    if (wrong !== undefined) return `--${name} must be one of ${o.choices!.join(', ')}, got "${String(wrong).slice(0, 80)}"`;
  }
  return undefined;
}

function printError(e: SextantError, json: boolean): void {
  if (json) process.stdout.write(JSON.stringify({ ok: false, code: e.code, message: e.message }) + '\n');
  process.stderr.write(`sextant: ${e.code}: ${e.message}\n`);
}

/** Runs the CLI; returns the process exit code (0 ok, 1 failure, 2 bad input). */
export async function main(argv: string[]): Promise<number> {
  const found = await findCommand(argv);
  const wantsJson = argv.includes('--json');
  if (!found) {
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      process.stdout.write(topHelp());
      return 0;
    }
    const prefix = argv.filter((a) => !a.startsWith('-'));
    const partial = COMMAND_SUMMARIES.some((c) => c.path[0] === prefix[0]);
    if (partial && (argv.includes('--help') || argv.includes('-h') || prefix.length === 1)) {
      process.stdout.write(topHelp(prefix.slice(0, 1)));
      return argv.includes('--help') || argv.includes('-h') ? 0 : 2;
    }
    printError(new SextantError({ code: 'USAGE', message: `unknown command "${argv.join(' ')}"; see sextant --help` }), wantsJson);
    return 2;
  }
  const { cmd, rest } = found;
  const options = { ...cmd.options, ...COMMON };
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: Object.fromEntries(
        // parseArgs rejects keys present with an undefined value: pass only the ones set.
        Object.entries(options).map(([k, o]) => [
          k,
          {
            type: o.type,
            ...(o.multiple !== undefined && { multiple: o.multiple }),
            ...(o.short !== undefined && { short: o.short }),
            ...(o.default !== undefined && { default: o.default as never }),
          },
        ]),
      ),
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    printError(new SextantError({ code: 'USAGE', message: `${(e as Error).message}; see sextant ${cmd.path.join(' ')} --help` }), wantsJson);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(commandHelp(cmd));
    return 0;
  }
  const json = parsed.values.json === true;
  const bad = checkOptionValues(cmd, parsed.values as CommandContext['values']);
  if (bad) {
    printError(new SextantError({ code: 'USAGE', message: `${bad}; see sextant ${cmd.path.join(' ')} --help` }), json);
    return 2;
  }
  const pos = cmd.positionals ?? positionalCount(cmd.args);
  if (parsed.positionals.length < pos.min || parsed.positionals.length > pos.max) {
    printError(
      new SextantError({ code: 'USAGE', message: `expected ${cmd.args ?? 'no arguments'}; see sextant ${cmd.path.join(' ')} --help` }),
      json,
    );
    return 2;
  }
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const ctx: CommandContext = {
    values: parsed.values as CommandContext['values'],
    positionals: parsed.positionals,
    json,
    log: (line) => process.stderr.write(line.endsWith('\n') ? line : line + '\n'),
    signal: ac.signal,
  };
  try {
    const result = await cmd.run(ctx);
    if (json) process.stdout.write(JSON.stringify(result) + '\n');
    else if (cmd.render) {
      const text = cmd.render(result, ctx);
      if (text) process.stdout.write(text.endsWith('\n') ? text : text + '\n');
    }
    return cmd.exitCode ? cmd.exitCode(result) : 0;
  } catch (e) {
    if (isSextantError(e)) {
      printError(e, json);
      return e.isInputError ? 2 : 1;
    }
    const err = new SextantError({ code: 'INTERNAL', message: (e as Error)?.stack ?? String(e) });
    printError(err, json);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
