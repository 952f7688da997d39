import type { CommandSpec } from '../command.js';

export const measurementsCommands: CommandSpec<any>[] = [];
