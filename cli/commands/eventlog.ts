import type { CommandSpec } from '../command.js';

export const eventlogCommands: CommandSpec<any>[] = [];
