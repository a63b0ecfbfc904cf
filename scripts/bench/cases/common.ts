// What the benchmark cases share: the persistent PyTorch worker (scripts/python/bench_worker.py),
// medians, the result row every case returns, and the synthetic models and batches they run on
// (made once with createModel into .cache/bench/, so both sides read the same files).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { createModel, saveSafetensors } from '../../../lib/models/index.ts';
import { PACKAGE_ROOT, tidy, type Tensor } from '../../../lib/torch/index.ts';
import { ensurePythonEnv } from '../../setup/python-env.mjs';

export const BENCH_CACHE = join(PACKAGE_ROOT, '.cache', 'bench');

/** One line of the bench table. Times are milliseconds per unit (step, forward, token, image, load). */
export interface CaseResult {
  group: string;
  name: string;
  /** What one timed unit is ("step of batch 32", "token", ...). */
  unit: string;
  medtune_ms: number;
  pytorch_ms: number;
  /** medtune / PyTorch: < 1 means medtune is faster. */
  ratio: number;
  /** The same ratio of the fastest samples: load on a shared machine only ever adds time, so this is the less noisy one. */
  min_ratio: number;
  /** Case-specific numbers (all samples, trainable counts, dispatch overhead, ...). */
  details?: Record<string, unknown>;
  /** Something the reader must know (the two sides trained different parameter counts ...). */
  note?: string;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function row(group: string, name: string, unit: string, mine: number[], theirs: number[], details: Record<string, unknown> = {}, note?: string): CaseResult {
  const medtune_ms = median(mine);
  const pytorch_ms = median(theirs);
  return {
    group, name, unit, medtune_ms, pytorch_ms, ratio: medtune_ms / pytorch_ms, min_ratio: Math.min(...mine) / Math.min(...theirs),
    details: { ...details, medtune_samples_ms: mine.map(round3), pytorch_samples_ms: theirs.map(round3) },
    ...(note ? { note } : {}),
  };
}

export const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * The PyTorch side as one long-lived interpreter: JSON commands in, JSON lines out. Started once
 * per case family, so interpreter start and `import transformers` stay outside every measurement.
 */
export class PythonWorker {
  readonly #proc: ChildProcessWithoutNullStreams;
  readonly #lines: Interface;
  readonly #waiting: ((line: string | null) => void)[] = [];
  #stderr = '';
  #closed = false;

  constructor(threads: number) {
    const python = ensurePythonEnv({ quiet: true });
    this.#proc = spawn(python, [join(PACKAGE_ROOT, 'scripts/python/bench_worker.py')], {
      env: { ...process.env, CUDA_VISIBLE_DEVICES: '', TOKENIZERS_PARALLELISM: 'false', OMP_NUM_THREADS: String(threads), PYTHONHASHSEED: '0' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#proc.stderr.on('data', (d: Buffer) => { this.#stderr = (this.#stderr + d.toString()).slice(-4000); });
    this.#lines = createInterface({ input: this.#proc.stdout });
    this.#lines.on('line', (line) => this.#waiting.shift()?.(line));
    this.#proc.on('exit', () => {
      this.#closed = true;
      for (const w of this.#waiting.splice(0)) w(null);
    });
  }

  async call<T>(cmd: Record<string, unknown>): Promise<T> {
    if (this.#closed) throw new Error(`the PyTorch bench worker has exited:\n${this.#stderr}`);
    const line = await new Promise<string | null>((resolve) => {
      this.#waiting.push(resolve);
      this.#proc.stdin.write(`${JSON.stringify(cmd)}\n`);
    });
    if (line === null) throw new Error(`the PyTorch bench worker exited during ${JSON.stringify(cmd)}:\n${this.#stderr}`);
    const reply = JSON.parse(line) as T & { error?: string };
    if (reply.error) throw new Error(`PyTorch side of ${JSON.stringify(cmd)}: ${reply.error}`);
    return reply;
  }

  close(): void {
    if (this.#closed) return;
    this.#proc.stdin.end();
    this.#lines.close();
  }
}

/** Runs `fn` with a fresh worker set to `threads`, closing it afterwards. */
export async function withWorker<T>(threads: number, fn: (w: PythonWorker, versions: PythonVersions) => Promise<T>): Promise<T> {
  const w = new PythonWorker(threads);
  try {
    const versions = await w.call<PythonVersions>({ cmd: 'threads', n: threads });
    return await fn(w, versions);
  } finally {
    w.close();
  }
}

export interface PythonVersions { threads: number; torch: string; transformers: string; python: string }

/** A short digest of a case's settings, so a changed config never reuses stale files. */
export function digest(x: unknown): string {
  return createHash('sha256').update(JSON.stringify(x)).digest('hex').slice(0, 10);
}

/** A model directory made by createModel (seeded), written once under .cache/bench/<name> (name with a config digest). */
export async function ensureModel(name: string, config: Record<string, unknown>): Promise<string> {
  const dir = join(BENCH_CACHE, name, 'model');
  if (existsSync(join(dir, 'config.json'))) return dir;
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(BENCH_CACHE, name), { recursive: true });
  const model = await createModel(config, { seed: 0 });
  try {
    await model.save(tmp);
  } finally {
    model.dispose();
  }
  renameSync(tmp, dir);
  return dir;
}

/** A tensor file written once under .cache/bench/<name>/<file>. */
export async function ensureData(name: string, file: string, make: () => Record<string, Tensor>, metadata: Record<string, string> = {}): Promise<string> {
  const path = join(BENCH_CACHE, name, file);
  if (existsSync(path)) return path;
  mkdirSync(join(BENCH_CACHE, name), { recursive: true });
  await tidy(async () => saveSafetensors(`${path}.tmp`, make(), metadata));
  renameSync(`${path}.tmp`, path);
  return path;
}
