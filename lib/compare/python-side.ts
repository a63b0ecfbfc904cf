// The PyTorch side of a comparison: scripts/python/compare_reference.py (transformers + peft) in
// the reference Python environment, given the same model, initial weights, batches and settings.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../torch/device.ts';
import { PACKAGE_ROOT } from '../torch/native.ts';
import type { TrainConfig, TrainDType } from '../train/config.ts';
import { runProcess, stderrTail } from './process.ts';
import type { SideResult } from './types.ts';

export const REFERENCE_SCRIPT = join(PACKAGE_ROOT, 'scripts', 'python', 'compare_reference.py');

export class ReferenceError extends Error {
  override name = 'ReferenceError';
}

/**
 * The interpreter for the PyTorch side: `explicit` (--python), else MEDTUNE_PYTHON, else the
 * project's .venv (made by `node scripts/setup/python-env.mjs`, which `npm test` runs).
 */
export function referencePython(explicit?: string | null): string {
  const python = explicit || process.env['MEDTUNE_PYTHON'] || join(PACKAGE_ROOT, '.venv', 'bin', 'python');
  if (!existsSync(python)) {
    throw new ReferenceError(`no Python for the PyTorch side at ${python}: create the reference environment with ` +
      '`node scripts/setup/python-env.mjs` (torch, transformers, peft), or name an interpreter that has them with --python PATH');
  }
  return python;
}

export type InitWeights =
  | { kind: 'adapter'; dir: string }
  | { kind: 'tensors'; file: string; /** checkpoint name -> transformers-5 parameter name */ names: Record<string, string> };

export interface PythonJob {
  model: string;
  dtype: TrainDType;
  device: Device;
  method: string;
  scope: string;
  train_extra: string[];
  init: InitWeights;
  batches: string;
  config: TrainConfig;
  /** Tests only: another learning rate on this side, to provoke a divergence. */
  lr: number | null;
  threads: number;
  out: string;
}

export async function runPythonSide(python: string, job: PythonJob, jobFile: string, onLine?: (line: string) => void): Promise<SideResult> {
  writeFileSync(jobFile, `${JSON.stringify(job, null, 1)}\n`);
  const env = { ...process.env, PYTHONHASHSEED: '0', TOKENIZERS_PARALLELISM: 'false', PYTHONUNBUFFERED: '1' };
  const r = await runProcess(python, [REFERENCE_SCRIPT, jobFile], { env, ...(onLine ? { onLine } : {}) });
  if (r.code !== 0) {
    throw new ReferenceError(`the PyTorch side failed (${python} ${REFERENCE_SCRIPT} ${jobFile}: ${r.signal ? `signal ${r.signal}` : `exit ${r.code}`}):\n${stderrTail(r.stderr)}`);
  }
  const file = join(job.out, 'result.json');
  if (!existsSync(file)) throw new ReferenceError(`the PyTorch side wrote no ${file}`);
  return JSON.parse(readFileSync(file, 'utf8')) as SideResult;
}
