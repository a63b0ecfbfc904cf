// The shape of a CLI command: each lives in lib/cli/commands/<name>.ts.
export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Returns the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** An error the CLI reports as one line, without a stack (bad flags, missing files). */
export class UsageError extends Error {
  override name = 'UsageError';
}
