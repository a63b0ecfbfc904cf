// Child processes of a comparison: each side runs in its own process (its own peak memory), and
// a failure comes back as an Error carrying the end of what the process wrote to stderr.
import { spawn } from 'node:child_process';

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs a command to completion; stdout is passed through to `onLine` (progress), stderr kept. */
export function runProcess(command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; onLine?: (line: string) => void } = {}): Promise<ProcessResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let pending = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) opts.onLine?.(line);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-64 * 1024);
    });
    child.on('error', (err) => reject(new Error(`could not start ${command}: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (pending) opts.onLine?.(pending);
      resolvePromise({ code, signal, stderr });
    });
  });
}

/** The last lines of a process's stderr, for an error message. */
export function stderrTail(stderr: string, lines = 15): string {
  return stderr.trim().split('\n').slice(-lines).join('\n');
}
