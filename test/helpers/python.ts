// Running the PyTorch reference side from tests. Scripts live in scripts/python/; fixtures they
// make (tiny checkpoints, reference outputs) are cached under .cache/fixtures/, keyed by the
// script's content and arguments, so they are made once per checkout and remade when the script
// changes.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePythonEnv } from '../../scripts/setup/python-env.mjs';
import { REPO_ROOT } from './fixtures.ts';

let python: string | null = null;

/** The reference interpreter (.venv, or MEDTUNE_PYTHON). Created on first use if missing. */
export function referencePython(): string {
  return (python ??= ensurePythonEnv({ quiet: true }));
}

/** Runs scripts/python/<script> with args; returns stdout. Errors carry Python's stderr. */
export function runPython(script: string, args: string[] = [], opts: { input?: string; timeoutMs?: number } = {}): string {
  try {
    return execFileSync(referencePython(), [join(REPO_ROOT, 'scripts/python', script), ...args], {
      encoding: 'utf8',
      input: opts.input,
      timeout: opts.timeoutMs ?? 900_000, // fixture makers train tiny models; a loaded 2-core CI needs the margin
      maxBuffer: 256 * 1024 * 1024,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONHASHSEED: '0', CUDA_VISIBLE_DEVICES: '', TOKENIZERS_PARALLELISM: 'false' },
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`python ${script} ${args.join(' ')} failed:\n${e.stderr || e.message}`);
  }
}

/** Parses the JSON a reference script prints. */
export function runPythonJson<T = unknown>(script: string, args: string[] = [], opts: { input?: string; timeoutMs?: number } = {}): T {
  return JSON.parse(runPython(script, args, opts)) as T;
}

/**
 * A directory made once by `scripts/python/<script> <outDir> ...args` and cached in
 * .cache/fixtures. Concurrent test processes may race: each builds into its own temporary
 * directory and the first rename wins. `dependsOn` names other scripts/python files the script
 * imports, so that editing them remakes the fixture too.
 */
export function cachedFixture(name: string, script: string, args: string[] = [], opts: { dependsOn?: string[] } = {}): string {
  const hash = createHash('sha256').update(readFileSync(join(REPO_ROOT, 'scripts/python', script))).update(JSON.stringify(args));
  for (const dep of opts.dependsOn ?? []) hash.update(readFileSync(join(REPO_ROOT, 'scripts/python', dep)));
  const key = hash.digest('hex').slice(0, 12);
  const root = join(REPO_ROOT, '.cache', 'fixtures');
  const dir = join(root, `${name}-${key}`);
  if (existsSync(join(dir, '.complete'))) return dir;
  mkdirSync(root, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  runPython(script, [tmp, ...args]);
  writeFileSync(join(tmp, '.complete'), `${script} ${args.join(' ')}\n`);
  try {
    renameSync(tmp, dir);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another process finished first
  }
  return dir;
}
