import type { CommandSpec } from '../command.js';

export const measureCommands: CommandSpec<any>[] = [];
