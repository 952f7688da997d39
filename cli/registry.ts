import type { CommandSpec } from './command.js';
import { agentCommands } from './commands/agent.js';
import { attestationCommands } from './commands/attestation.js';
import { eventlogCommands } from './commands/eventlog.js';
import { imageCommands } from './commands/image.js';
import { keyserviceCommands } from './commands/keyservice.js';
import { measureCommands } from './commands/measure.js';
import { measurementsCommands } from './commands/measurements.js';
import { recoverCommands } from './commands/recover.js';
import { secureBootCommands } from './commands/secureboot.js';
import { tpmCommands } from './commands/tpm.js';

/** Every command of the CLI, one module per component. */
export function registry(): CommandSpec<any>[] {
  return [
    ...measureCommands,
    ...eventlogCommands,
    ...measurementsCommands,
    ...tpmCommands,
    ...attestationCommands,
    ...keyserviceCommands,
    ...agentCommands,
    ...recoverCommands,
    ...imageCommands,
    ...secureBootCommands,
  ];
}
