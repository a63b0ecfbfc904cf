// Every command the CLI knows, in the order `medtune --help` lists them.
import type { Command } from '../command.ts';
import { convert } from './convert.ts';
import { doctor } from './doctor.ts';
import { score } from './score.ts';

export const COMMANDS: Command[] = [score, convert, doctor];
