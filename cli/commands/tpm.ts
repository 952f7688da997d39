import type { CommandSpec } from '../command.js';

export const tpmCommands: CommandSpec<any>[] = [];
