// Every command the CLI knows, in the order `medtune --help` lists them.
import type { Command } from '../command.ts';
import { compareCommand } from './compare.ts';
import { convert } from './convert.ts';
import { doctor } from './doctor.ts';
import { evalCommand } from './eval.ts';
import { mergeCommand } from './merge.ts';
import { score } from './score.ts';
import { trainCommand } from './train.ts';

export const COMMANDS: Command[] = [trainCommand, evalCommand, compareCommand, mergeCommand, score, convert, doctor];
