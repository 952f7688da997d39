import type { CommandSpec } from './command.js';

/**
 * Every command module, keyed by the first word of its commands' paths (`sextant agent ...`
 * lives in commands/agent.ts; `image` has two). A module is imported only when one of its commands runs or
 * shows its --help, so `sextant agent run` loads neither the key service, the image builder
 * nor the measurement CLI. `sextant --help` lists the commands from cli/summaries.ts, which
 * `npm run gen:cli` generates from these modules (a test keeps it current).
 */
export const COMMAND_MODULES: Readonly<Record<string, () => Promise<CommandSpec<any>[]>>> = {
  measure: async () => (await import('./commands/measure.js')).measureCommands,
  eventlog: async () => (await import('./commands/eventlog.js')).eventlogCommands,
  measurements: async () => (await import('./commands/measurements.js')).measurementsCommands,
  tpm: async () => (await import('./commands/tpm.js')).tpmCommands,
  attestation: async () => (await import('./commands/attestation.js')).attestationCommands,
  keyservice: async () => (await import('./commands/keyservice.js')).keyserviceCommands,
  agent: async () => (await import('./commands/agent.js')).agentCommands,
  recover: async () => (await import('./commands/recover.js')).recoverCommands,
  mini: async () => (await import('./commands/mini.js')).miniCommands,
  image: async () => [...(await import('./commands/image.js')).imageCommands, ...(await import('./commands/secureboot.js')).secureBootCommands],
};

/** The commands whose path starts with `word` (imports that one module). */
export async function commandsFor(word: string | undefined): Promise<CommandSpec<any>[]> {
  const load = word !== undefined && Object.hasOwn(COMMAND_MODULES, word) ? COMMAND_MODULES[word] : undefined;
  return load ? load() : [];
}

/** Every command of the CLI (imports every module: for the generated reference and tests). */
export async function registry(): Promise<CommandSpec<any>[]> {
  const all: CommandSpec<any>[] = [];
  for (const load of Object.values(COMMAND_MODULES)) all.push(...(await load()));
  return all;
}
