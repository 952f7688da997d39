import type { CommandSpec } from '../command.js';

export const agentCommands: CommandSpec<any>[] = [];
