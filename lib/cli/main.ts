// `medtune <command> [flags]`: dispatches to lib/cli/commands, turns failures into one clear
// message and an exit code.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../torch/native.ts';
import { UsageError } from './command.ts';
import { COMMANDS } from './commands/index.ts';

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `medtune ${packageVersion()}: parameter-efficient fine-tuning of medical vision and vision-language models`,
    '',
    'Usage: medtune <command> [options]    (medtune <command> --help for its options)',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    console.log(packageVersion());
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(`medtune: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`${command.summary}\n\nUsage: ${command.usage}`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError || (err instanceof TypeError && (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')) {
      console.error(`medtune ${name}: ${err.message}\nUsage: ${command.usage}`);
      return 2;
    }
    const e = err as Error & { code?: string };
    console.error(`medtune ${name}: ${e.message}`);
    if (process.env['MEDTUNE_DEBUG']) console.error(e.stack);
    return 1;
  }
}
