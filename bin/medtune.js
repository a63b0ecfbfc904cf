#!/usr/bin/env node
// The medtune command. The TypeScript sources run through tsx's loader, so there is no
// separate compile step between editing lib/ and running the CLI.
import { register } from 'tsx/esm/api';

// `medtune doctor | head` closes the pipe early; that is not an error worth a stack trace.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

register();
const { main } = await import('../lib/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
