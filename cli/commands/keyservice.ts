import type { CommandSpec } from '../command.js';

export const keyserviceCommands: CommandSpec<any>[] = [];
