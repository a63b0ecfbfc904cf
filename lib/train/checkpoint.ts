// Training checkpoints: everything a run needs to continue exactly where it stopped.
//
//   <out>/checkpoint-<step>/
//     trainable.safetensors   the trained tensors under their checkpoint names (or whatever the
//                             method's TrainedWeightsIO writes, e.g. a PEFT adapter)
//     optimizer.safetensors   per-parameter optimizer state ("<param>.exp_avg" ...); metadata:
//                             format, kind, groups (JSON: names, lr, weight decay ...)
//     rng_state.safetensors   the global CPU (and CUDA) generator states
//     trainer_state.json      step, epoch, position in the epoch, schedule, config digest
//
// A checkpoint directory is built under a temporary name and renamed into place, so an
// interrupted save never replaces or damages the previous good checkpoint.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Model } from '../models/model.ts';
import { writeFileAtomicSync } from '../io/atomic-write.ts';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.ts';
import { nativePart } from '../torch/native.ts';
import type { TensorHandle } from '../torch/native-types.ts';
import { noGrad } from '../torch/autograd.ts';
import { Tensor } from '../torch/tensor.ts';
import type { GradScalerSnapshot } from './mixed-precision.ts';
import type { OptimizerKind } from './native-types.ts';
import type { Optimizer } from './optimizer.ts';

export const TRAINABLE_FILE = 'trainable.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const RNG_FILE = 'rng_state.safetensors';
export const TRAINER_STATE_FILE = 'trainer_state.json';
const OPTIMIZER_FORMAT = 'medtune.optimizer/1';

export interface TrainerState {
  format: 'medtune.trainer_state/1';
  /** Optimizer steps done. */
  global_step: number;
  total_steps: number;
  /** The epoch the next step belongs to, and how many of its accumulation windows are done. */
  epoch: number;
  windows_done_in_epoch: number;
  samples_seen: number;
  seed: number;
  /** What the position (epoch, windows done) means: resuming needs the same. */
  data_order: { examples: number; batch_size: number; grad_accum: number; shuffle: boolean; drop_last: boolean };
  trainable: string[];
  optimizer: OptimizerKind;
  schedule: unknown;
  /** The last train record (loss, lr ...) and the last evaluation, for reports. */
  last_log: Record<string, unknown> | null;
  last_eval: Record<string, unknown> | null;
  /** Optimizer steps the schedule has taken (fp16 steps skipped by the loss scaler do not count); absent: global_step. */
  scheduler_step?: number;
  /** fp16 dynamic loss scaling: the scaler's state (torch.amp.GradScaler.state_dict()'s numbers). */
  grad_scaler?: GradScalerSnapshot | null;
}

/** How a tuning method writes and restores what it trained (the PEFT layer supplies adapters'). */
export interface TrainedWeightsIO {
  save(model: Model, dir: string): Promise<string[]>;
  load(model: Model, dir: string): Promise<void>;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

function trainableNames(model: Model): string[] {
  return model.parameters().filter((p) => p.requiresGrad).map((p) => p.name);
}

/** Default: the trainable tensors under their checkpoint names, in one safetensors file. */
export const trainableTensorsIO: TrainedWeightsIO = {
  async save(model, dir) {
    const names = trainableNames(model);
    const tensors = new Map(names.map((n) => [n, model.parameter(n)]));
    try {
      await saveSafetensors(join(dir, TRAINABLE_FILE), tensors, { format: 'pt', producer: 'medtune' });
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
    return [TRAINABLE_FILE];
  },
  async load(model, dir) {
    const file = join(dir, TRAINABLE_FILE);
    if (!existsSync(file)) throw new CheckpointError(`${file}: missing (the checkpoint has no trained tensors)`);
    const { tensors } = await loadSafetensors(file);
    try {
      const params = new Map(model.parameters().map((p) => [p.name, p]));
      for (const [name, t] of Object.entries(tensors)) {
        const p = params.get(name);
        if (!p) throw new CheckpointError(`${file}: tensor '${name}' is not a parameter of this model`);
        if (p.shape.join(',') !== t.shape.join(',')) throw new CheckpointError(`${file}: '${name}' has shape [${t.shape}] but the model's is [${p.shape}]`);
      }
      for (const [name, t] of Object.entries(tensors)) {
        const p = model.parameter(name);
        try {
          noGrad(() => p.copy_(t));
        } finally {
          p.dispose();
        }
      }
    } finally {
      for (const t of Object.values(tensors)) t.dispose();
    }
  },
};

interface RngAddon {
  rngState(): { cpu: TensorHandle; cuda: TensorHandle[] };
  setRngState(state: { cpu: TensorHandle; cuda?: TensorHandle[] }, source?: string): void;
}

async function saveRngState(file: string): Promise<void> {
  const state = nativePart<RngAddon>().rngState();
  const tensors: Record<string, Tensor> = { cpu: Tensor.fromHandle(state.cpu) };
  state.cuda.forEach((h, i) => {
    tensors[`cuda.${i}`] = Tensor.fromHandle(h);
  });
  try {
    await saveSafetensors(file, tensors, { format: 'medtune.rng/1' });
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

async function loadRngState(file: string): Promise<void> {
  const { tensors } = await loadSafetensors(file);
  try {
    if (!tensors['cpu']) throw new CheckpointError(`${file}: no 'cpu' generator state`);
    const cuda = Object.keys(tensors).filter((k) => k.startsWith('cuda.')).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
    nativePart<RngAddon>().setRngState({ cpu: tensors['cpu'].handle, cuda: cuda.map((k) => tensors[k]!.handle) }, file);
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

async function saveOptimizer(file: string, optimizer: Optimizer): Promise<void> {
  const state = optimizer.state();
  try {
    await saveSafetensors(file, state, { format: OPTIMIZER_FORMAT, kind: optimizer.kind, groups: JSON.stringify(optimizer.groups) });
  } finally {
    for (const t of Object.values(state)) t.dispose();
  }
}

async function loadOptimizer(file: string, optimizer: Optimizer): Promise<void> {
  const { tensors, metadata } = await loadSafetensors(file);
  try {
    if (metadata['format'] !== OPTIMIZER_FORMAT) throw new CheckpointError(`${file}: not a medtune optimizer state (format '${metadata['format'] ?? 'none'}')`);
    if (metadata['kind'] !== optimizer.kind) throw new CheckpointError(`${file}: saved by a ${metadata['kind']} optimizer, this run uses ${optimizer.kind}`);
    optimizer.loadState(tensors, file);
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

export function checkpointDir(out: string, step: number): string {
  return join(out, `checkpoint-${step}`);
}

/** Writes a complete checkpoint directory atomically (built aside, then renamed into place). */
export async function saveCheckpoint(dir: string, parts: { model: Model; optimizer: Optimizer; state: TrainerState; weights: TrainedWeightsIO }): Promise<void> {
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    await parts.weights.save(parts.model, tmp);
    await saveOptimizer(join(tmp, OPTIMIZER_FILE), parts.optimizer);
    await saveRngState(join(tmp, RNG_FILE));
    writeFileAtomicSync(join(tmp, TRAINER_STATE_FILE), `${JSON.stringify(parts.state, null, 2)}\n`);
    const old = existsSync(dir) ? `${tmp}.old` : null;
    if (old) renameSync(dir, old);
    renameSync(tmp, dir);
    if (old) rmSync(old, { recursive: true, force: true });
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

export function readTrainerState(dir: string): TrainerState {
  const file = join(dir, TRAINER_STATE_FILE);
  if (!existsSync(file)) throw new CheckpointError(`${dir}: not a training checkpoint (no ${TRAINER_STATE_FILE})`);
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(file, 'utf8')) as TrainerState;
  } catch (err) {
    throw new CheckpointError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (state.format !== 'medtune.trainer_state/1') throw new CheckpointError(`${file}: unknown format '${String(state.format)}'`);
  return state;
}

/**
 * Restores model weights, optimizer state and RNG state from a checkpoint; returns its trainer
 * state. The trainable parameters of this run must be the checkpoint's.
 */
export async function loadCheckpoint(dir: string, parts: { model: Model; optimizer: Optimizer; weights: TrainedWeightsIO }): Promise<TrainerState> {
  const state = readTrainerState(dir);
  const now = trainableNames(parts.model);
  const missing = state.trainable.filter((n) => !now.includes(n));
  const extra = now.filter((n) => !state.trainable.includes(n));
  if (missing.length || extra.length) {
    throw new CheckpointError(`${dir}: the checkpoint trained other parameters than this run` +
      `${missing.length ? `; not trainable now: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ' ...' : ''}` : ''}` +
      `${extra.length ? `; not in the checkpoint: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ' ...' : ''}` : ''}`);
  }
  await parts.weights.load(parts.model, dir);
  await loadOptimizer(join(dir, OPTIMIZER_FILE), parts.optimizer);
  await loadRngState(join(dir, RNG_FILE));
  return state;
}

/** checkpoint-<step> directories under `out`, oldest first. */
export function listCheckpoints(out: string): { step: number; dir: string }[] {
  if (!existsSync(out)) return [];
  return readdirSync(out)
    .map((name) => /^checkpoint-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), dir: join(out, m[0]) }))
    .filter((c) => existsSync(join(c.dir, TRAINER_STATE_FILE)))
    .sort((a, b) => a.step - b.step);
}

/** Removes the oldest checkpoints beyond `keep`. */
export function pruneCheckpoints(out: string, keepLast: number): void {
  const all = listCheckpoints(out);
  for (const c of all.slice(0, Math.max(0, all.length - keepLast))) rmSync(c.dir, { recursive: true, force: true });
}
