import type { CommandSpec } from '../command.js';

export const imageCommands: CommandSpec<any>[] = [];
