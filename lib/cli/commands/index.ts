// Every command the CLI knows, in the order `medtune --help` lists them.
import type { Command } from '../command.ts';
import { doctor } from './doctor.ts';
import { mergeCommand } from './merge.ts';
import { trainCommand } from './train.ts';

export const COMMANDS: Command[] = [doctor, trainCommand, mergeCommand];
