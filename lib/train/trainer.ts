// The training loop: a library the CLI only drives. Which parameters train is whatever the
// model's requiresGrad flags say (PEFT masks set them); each optimizer step is one native job
// (trainStep) while this loop, on the event loop, prepares the next window's batches, logs and
// draws progress.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../io/atomic-write.ts';
import type { Batch, Model } from '../models/model.ts';
import { nativePart } from '../torch/native.ts';
import type { TensorHandle } from '../torch/native-types.ts';
import { zeros } from '../torch/creation.ts';
import { manualSeed } from '../torch/runtime.ts';
import { Tensor } from '../torch/tensor.ts';
import {
  CheckpointError, checkpointDir, listCheckpoints, loadCheckpoint, pruneCheckpoints, saveCheckpoint, trainableTensorsIO,
  TRAINER_STATE_FILE, type TrainedWeightsIO, type TrainerState,
} from './checkpoint.ts';
import type { TrainConfig } from './config.ts';
import { stepsPerEpoch, trainingWindows, type WindowRef } from './data-order.ts';
import type { TrainDataset } from './dataset.ts';
import type { OptimizerHandle } from './native-types.ts';
import { createOptimizer, type Optimizer, type OptimizerSpec } from './optimizer.ts';
import { GRAD_SCALER_DEFAULTS, GradScalerState, setupMixedPrecision, type MixedPrecision } from './mixed-precision.ts';
import { buildParamGroups, type ResolvedGroup } from './param-groups.ts';
import { defaultProgress, type ProgressSink } from './progress.ts';
import { LrSchedule } from './schedule.ts';
import { type EvalRecord, JsonlLog, type StepRecord } from './step-log.ts';

export const TRAINING_CONFIG_FILE = 'training_config.json';

/** A step's numbers as the device computed them (csrc/train/train_step.cpp). */
interface StepNumbers {
  loss: number;
  gradNorm: number;
  /** Loss and gradient norm finite. */
  finite: boolean;
  /** The optimizer updated the weights (false: skipped on inf/NaN, by the loss scaler or the stop flag). */
  applied: boolean;
  /** The loss scale the step ran with (fp16). */
  lossScale?: number;
  tokens?: number;
  supervisedTokens?: number;
}

interface StepAddon {
  trainStepAsync(
    model: Model['handle'],
    optimizer: OptimizerHandle,
    microBatches: Record<string, TensorHandle>[],
    options: {
      lrs: number[]; maxGradNorm: number; lossScaling: 'tokens' | 'batches'; read: boolean; stopFlag: TensorHandle | null;
      scaler: ReturnType<GradScalerState['stepOptions']> | null;
    },
  ): Promise<Partial<StepNumbers> & { stats?: TensorHandle; samples: number; forwardBackwardMs: number; optimizerMs: number; startedAtMs: number; endedAtMs: number }>;
  readStepStatsAsync(stats: TensorHandle[]): Promise<StepNumbers[]>;
}

/** fp16: a run stops when the loss scaler has skipped this many optimizer steps in a row. */
export const MAX_CONSECUTIVE_SKIPPED_STEPS = 50;

/**
 * Where one step's time went, for benchmarks (scripts/bench): the native step's own split, and
 * four instants on the monotonic clock (ms; process.hrtime's clock and the native steady_clock):
 * the trainStepAsync call, the native step's start and end on the compute queue's thread, and the
 * loop resuming with the result. startedAtMs - calledAtMs is argument reading plus the queue's
 * wake-up; resumedAtMs - endedAtMs is the hand-off back to the event loop.
 */
export interface StepTiming {
  forwardBackwardMs: number;
  optimizerMs: number;
  calledAtMs: number;
  startedAtMs: number;
  endedAtMs: number;
  resumedAtMs: number;
}

const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6;

export interface TrainerOptions {
  model: Model;
  train: TrainDataset;
  /** Validation set: evaluated every config.evalEvery steps and at the end. */
  eval?: TrainDataset | null;
  config: TrainConfig;
  /** How the trained weights are written and restored (default: trainable.safetensors). */
  weights?: TrainedWeightsIO;
  /** Continue from this checkpoint-<step> directory. */
  resumeFrom?: string | null;
  progress?: ProgressSink;
  /** Lines for the user (parameter report, evaluations, saves); default console.log. */
  print?: (line: string) => void;
  /** The trainable-parameter report printed before step 1 (the PEFT layer's; default a count). */
  parameterReport?: (model: Model) => string;
  /** Recorded in training_config.json next to the resolved settings (model, data, method ...). */
  describe?: Record<string, unknown>;
  /** Called after every optimizer step with its log record and where the step's time went. */
  onStep?: (record: StepRecord, timing: StepTiming) => void;
}

export interface TrainResult {
  steps: number;
  /** Loss of every optimizer step of this run (a resumed run: from the resume point). */
  losses: number[];
  lastEval: EvalRecord | null;
  out: string;
  /** Files of the trained weights in `out`. */
  weightFiles: string[];
  trainable: { count: number; total: number };
  /** The mixed precision the run used (computeDType null: float32). */
  mixedPrecision: MixedPrecision;
  /** fp16: optimizer steps the loss scaler skipped (inf/NaN gradients). */
  skippedSteps: number;
}

/** A non-finite loss or gradient norm: training stops at that step, before updating anything. */
export class TrainingDivergedError extends Error {
  override name = 'TrainingDivergedError';
  readonly code = 'MEDTUNE_DIVERGED';
  constructor(readonly step: number, what: string, readonly lastCheckpoint: string | null) {
    super(`step ${step}: ${what}; training stopped before updating the weights at this step. ` +
      (lastCheckpoint ? `The last good checkpoint is ${lastCheckpoint} (resume from it with a lower learning rate, say).` : 'No checkpoint was saved before it (--save-every N keeps them).'));
  }
}

/** peft's print_trainable_parameters line. */
export function trainableParameterLine(model: Model): string {
  const { total, trainable } = model.parameterCount();
  return `trainable params: ${trainable.toLocaleString('en-US')} || all params: ${total.toLocaleString('en-US')} || trainable%: ${(100 * trainable / total).toFixed(4)}`;
}

function optimizerSpec(c: TrainConfig): OptimizerSpec {
  if (c.optimizer === 'adamw') return { kind: 'adamw', lr: c.lr, betas: c.betas, eps: c.eps, weightDecay: c.weightDecay };
  return { kind: 'sgd', lr: c.lr, momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weightDecay };
}

function disposeBatch(batch: Batch): void {
  for (const t of Object.values(batch)) t?.dispose();
}

function handlesOf(batch: Batch): Record<string, TensorHandle> {
  const out: Record<string, TensorHandle> = {};
  for (const [k, t] of Object.entries(batch)) if (t) out[k] = t.handle;
  return out;
}

/** The optimizer over the model's trainable parameters, grouped as the config says. */
export function buildOptimizer(model: Model, c: TrainConfig): { optimizer: Optimizer; groups: ResolvedGroup[] } {
  const trainable = model.parameters().filter((p) => p.requiresGrad);
  if (trainable.length === 0) throw new Error('the model has no trainable parameters (did the tuning method select any?)');
  const tensors = trainable.map((p) => ({ name: p.name, kind: p.kind, tensor: model.parameter(p.name) }));
  try {
    const groups = buildParamGroups(tensors, { lr: c.lr, weightDecay: c.weightDecay, noDecay: c.noDecay, ...(c.layerDecay !== null ? { layerDecay: c.layerDecay } : {}) });
    return { optimizer: createOptimizer(optimizerSpec(c), groups, { implementation: c.optimizerImplementation }), groups };
  } finally {
    // The native optimizer holds its own references to the parameters.
    for (const t of tensors) t.tensor.dispose();
  }
}

/** Mean loss over a dataset in file order (weighted by batch size, as the HF Trainer's eval_loss). */
export async function evaluateLoss(model: Model, data: TrainDataset, batchSize: number): Promise<{ loss: number; samples: number; ms: number }> {
  const t0 = performance.now();
  const wasTraining = model.training;
  model.eval();
  let sum = 0;
  let samples = 0;
  try {
    for (let i = 0; i < data.size; i += batchSize) {
      const indices = Array.from({ length: Math.min(batchSize, data.size - i) }, (_, k) => i + k);
      const batch = await data.batch(indices);
      try {
        const out = await model.forward(batch, { grad: false, logits: false });
        try {
          const loss = out['loss'];
          if (!loss) throw new Error('the model returned no loss on the validation set: does it have labels?');
          sum += (await loss.toFloat32Async())[0]! * indices.length;
          samples += indices.length;
        } finally {
          for (const t of Object.values(out)) t.dispose();
        }
      } finally {
        disposeBatch(batch);
      }
    }
  } finally {
    model.train(wasTraining);
  }
  return { loss: sum / samples, samples, ms: performance.now() - t0 };
}

async function prepare(data: TrainDataset, w: WindowRef): Promise<Batch[]> {
  const out: Batch[] = [];
  try {
    for (const indices of w.batches) out.push(await data.batch(indices));
  } catch (err) {
    out.forEach(disposeBatch);
    throw err;
  }
  return out;
}

export async function train(opts: TrainerOptions): Promise<TrainResult> {
  const { model, config: c } = opts;
  const data = opts.train;
  const weights = opts.weights ?? trainableTensorsIO;
  const print = opts.print ?? ((line: string) => console.log(line));
  const perEpoch = stepsPerEpoch(data.size, c.batchSize, c.gradAccum, c.dropLast);
  if (perEpoch === 0) throw new Error(`the training set has ${data.size} examples, fewer than one batch of ${c.batchSize} (with drop-last)`);
  const totalSteps = c.steps ?? c.epochs! * perEpoch;
  const memory = model.setMemoryOptions({ gradientCheckpointing: c.gradientCheckpointing, lossChunkTokens: c.lossChunkTokens });
  if (c.gradientCheckpointing && memory.checkpointedLayers === 0) print('note: gradient checkpointing is on but this model has no layers it applies to');

  // Mixed precision before the optimizer: it must hold the float32 masters.
  const mixed: MixedPrecision = c.mixedPrecision ? setupMixedPrecision(model) : setupMixedPrecision(model, 'off');
  const { optimizer, groups } = buildOptimizer(model, c);
  const scaler = mixed.computeDType === 'float16' && c.gradScaler ? new GradScalerState({ ...GRAD_SCALER_DEFAULTS, ...c.gradScaler }, model.device) : null;
  // Without a scaler, the first non-finite step sets this flag on the device and every later step
  // leaves the weights alone, so the trainer may read the verdict steps later (--log-every).
  const stopFlag = scaler ? null : zeros([], { dtype: 'float32', device: model.device });
  try {
    const schedule = new LrSchedule({ name: c.schedule, totalSteps, warmup: c.warmup }, optimizer.baseLrs);
    const trainableNames = optimizer.parameterNames;
    const dataOrder = { examples: data.size, batch_size: c.batchSize, grad_accum: c.gradAccum, shuffle: c.shuffle, drop_last: c.dropLast };
    let state: TrainerState = {
      format: 'medtune.trainer_state/1', global_step: 0, total_steps: totalSteps, epoch: 0, windows_done_in_epoch: 0, samples_seen: 0,
      seed: c.seed, data_order: dataOrder, trainable: trainableNames, optimizer: c.optimizer, schedule: schedule.toJSON(), last_log: null, last_eval: null,
      scheduler_step: 0, grad_scaler: null,
    };
    if (opts.resumeFrom) {
      const saved = await loadCheckpoint(opts.resumeFrom, { model, optimizer, weights });
      // The position in the data only means something with the same data order.
      const was = { seed: saved.seed, ...saved.data_order };
      const now = { seed: c.seed, ...dataOrder };
      const differs = (Object.keys(now) as (keyof typeof now)[]).filter((k) => was[k] !== now[k]);
      if (differs.length) {
        throw new CheckpointError(`${opts.resumeFrom}: the checkpoint's data order differs from this run's (${differs.map((k) => `${k} ${String(was[k])} vs ${String(now[k])}`).join(', ')}); resume with the same data, seed, batch size, accumulation and shuffling`);
      }
      if (JSON.stringify(saved.schedule) !== JSON.stringify(schedule.toJSON())) {
        print(`note: the learning-rate schedule differs from the checkpoint's (now ${schedule.spec.name} over ${totalSteps} steps, base lr ${optimizer.baseLrs[0]}); the run continues with the new one`);
      }
      state = { ...saved, total_steps: totalSteps, schedule: schedule.toJSON(), scheduler_step: saved.scheduler_step ?? saved.global_step };
      if (scaler && saved.grad_scaler) scaler.restore(saved.grad_scaler);
      print(`resuming from ${opts.resumeFrom} after step ${state.global_step} (continuing in epoch ${state.epoch + 1})`);
    } else {
      manualSeed(c.seed);
    }

    mkdirSync(c.out, { recursive: true });
    writeFileAtomicSync(join(c.out, TRAINING_CONFIG_FILE), `${JSON.stringify({
      ...opts.describe, ...c, log: c.log ?? join(c.out, 'train_log.jsonl'),
      total_steps: totalSteps, steps_per_epoch: perEpoch, warmup_steps: schedule.warmupSteps, loss_scaling: data.lossScaling,
      train_data: data.describe(), eval_data: opts.eval?.describe() ?? null,
      param_groups: groups.map((g) => ({ name: g.name, lr: g.lr, weight_decay: g.weightDecay, lr_scale: g.lrScale, params: g.params.length })),
    }, null, 2)}\n`);

    print((opts.parameterReport ?? trainableParameterLine)(model));
    if (mixed.computeDType) {
      print(`mixed precision: ${mixed.computeDType} autocast, frozen weights ${mixed.computeDType}, trained tensors float32 masters` +
        (scaler ? `, dynamic loss scaling (scale ${scaler.config.initScale}, x${scaler.config.growthFactor} every ${scaler.config.growthInterval} good steps)` : ''));
    }
    const log = new JsonlLog(c.log ?? join(c.out, 'train_log.jsonl'), { append: Boolean(opts.resumeFrom) });
    const progress = opts.progress ?? defaultProgress(totalSteps);
    const losses: number[] = [];
    let lastEval: EvalRecord | null = null;
    let lastCheckpoint = listCheckpoints(c.out).at(-1)?.dir ?? null;
    const startMs = performance.now();
    const stepAddon = nativePart<StepAddon>();
    const evalBatch = c.evalBatchSize ?? c.batchSize;

    const runEval = async (epoch: number): Promise<void> => {
      if (!opts.eval) return;
      const r = await evaluateLoss(model, opts.eval, evalBatch);
      lastEval = { type: 'eval', step: state.global_step, epoch: epoch + 1, eval_loss: r.loss, eval_samples: r.samples, eval_ms: Math.round(r.ms) };
      state.last_eval = lastEval;
      log.write(lastEval);
      progress.note(`eval at step ${state.global_step}: loss ${r.loss.toFixed(4)} over ${r.samples} examples`);
    };

    model.train(true);
    const windows = trainingWindows(data.size, c, state.epoch, state.windows_done_in_epoch);
    let current = windows.next().value as WindowRef;
    let ready = prepare(data, current);
    // Steps whose numbers are still on the device (read: false), oldest first.
    let unread: { step: number; epoch: number; lr: number; samples: number; timing: StepTiming; stats: Tensor }[] = [];
    let groupStart = performance.now();
    let skippedSteps = 0;
    let consecutiveSkips = 0;
    const schedulerStep = (): number => state.scheduler_step ?? state.global_step;

    // Turns read-back numbers into log records, in step order; stops at the first non-finite step.
    const account = (steps: { step: number; epoch: number; lr: number; samples: number; timing: StepTiming; n: StepNumbers }[], groupMs: number): void => {
      for (const { step, epoch, lr, samples, timing, n } of steps) {
        if (scaler) {
          if (!n.applied) {
            skippedSteps++;
            consecutiveSkips++;
            if (consecutiveSkips >= MAX_CONSECUTIVE_SKIPPED_STEPS) {
              throw new TrainingDivergedError(step, `the fp16 loss scaler skipped ${consecutiveSkips} steps in a row (inf/NaN gradients; loss scale now ${(n.lossScale ?? 0) * scaler.config.backoffFactor})`, lastCheckpoint);
            }
          } else {
            consecutiveSkips = 0;
          }
        } else if (!n.finite || !n.applied) {
          const what = !Number.isFinite(n.loss) ? `the loss is ${n.loss}` : `the gradient norm is ${n.gradNorm}`;
          throw new TrainingDivergedError(step, what, lastCheckpoint);
        }
        const stepMs = groupMs / steps.length;
        const record: StepRecord = {
          type: 'train', step, epoch, loss: n.loss, lr, grad_norm: n.gradNorm, samples,
          ...(n.tokens !== undefined ? { tokens: n.tokens } : {}),
          ...(n.supervisedTokens !== undefined ? { supervised_tokens: n.supervisedTokens } : {}),
          ...(n.lossScale !== undefined ? { loss_scale: n.lossScale } : {}),
          ...(scaler && !n.applied ? { skipped: true } : {}),
          step_ms: Math.round(stepMs * 1000) / 1000,
          native_ms: Math.round((timing.forwardBackwardMs + timing.optimizerMs) * 1000) / 1000,
          samples_per_s: samples / (stepMs / 1000),
          ...(n.tokens !== undefined ? { tokens_per_s: n.tokens / (stepMs / 1000) } : {}),
        };
        losses.push(n.loss);
        state.last_log = record as unknown as Record<string, unknown>;
        log.write(record);
        opts.onStep?.(record, timing);
        progress.step({
          step, totalSteps, epoch, loss: n.loss, lr, gradNorm: n.gradNorm,
          samplesPerS: record.samples_per_s, ...(record.tokens_per_s !== undefined ? { tokensPerS: record.tokens_per_s } : {}),
          elapsedMs: performance.now() - startMs,
        });
      }
    };

    try {
      while (state.global_step < totalSteps) {
        const batches = await ready;
        const step = state.global_step + 1;
        const lrs = schedule.lrs(schedulerStep());
        // Read the numbers at logged steps, before evaluations and saves, at the end, and every
        // step with a loss scaler (whether it skipped decides the next step's lr, as in the HF Trainer).
        const evalHere = Boolean(opts.eval && c.evalEvery && step % c.evalEvery === 0 && step < totalSteps);
        const saveHere = Boolean(c.saveEvery && step % c.saveEvery === 0 && step < totalSteps);
        const read = scaler !== null || step % c.logEvery === 0 || step === totalSteps || evalHere || saveHere;
        let result;
        let calledAtMs = 0;
        let resumedAtMs = 0;
        let next: WindowRef | null = null;
        try {
          calledAtMs = monotonicMs();
          const pending = stepAddon.trainStepAsync(model.handle, optimizer.handle, batches.map(handlesOf), {
            lrs, maxGradNorm: c.maxGradNorm, lossScaling: data.lossScaling, read, stopFlag: stopFlag?.handle ?? null, scaler: scaler?.stepOptions() ?? null,
          });
          // While the native step runs, the event loop collates the next window.
          next = step < totalSteps ? (windows.next().value as WindowRef) : null;
          ready = next ? prepare(data, next) : Promise.resolve([]);
          result = await pending;
          resumedAtMs = monotonicMs();
        } catch (err) {
          // An out-of-memory step left the weights as they were (csrc/train/oom_guard.h): say which step.
          if ((err as { code?: string }).code === 'MEDTUNE_OUT_OF_MEMORY') (err as Error).message = `step ${step}: ${(err as Error).message}`;
          throw err;
        } finally {
          batches.forEach(disposeBatch);
        }
        state.global_step = step;
        state.samples_seen += result.samples;
        const epochOfStep = current.epoch;
        // Where a resumed run continues: the next window (or just past this one at the end).
        state.epoch = next ? next.epoch : current.epoch;
        state.windows_done_in_epoch = next ? next.index : current.index + 1;
        if (next) current = next;
        const timing: StepTiming = {
          forwardBackwardMs: result.forwardBackwardMs, optimizerMs: result.optimizerMs, calledAtMs, startedAtMs: result.startedAtMs, endedAtMs: result.endedAtMs, resumedAtMs,
        };
        const entry = { step, epoch: epochOfStep + 1, lr: lrs[0]!, samples: result.samples, timing };
        if (!read) {
          unread.push({ ...entry, stats: Tensor.fromHandle(result.stats!) });
          state.scheduler_step = schedulerStep() + 1;  // no scaler: every step counts
          continue;
        }
        const earlier = unread;
        unread = [];
        let numbers: StepNumbers[];
        try {
          numbers = earlier.length ? await stepAddon.readStepStatsAsync(earlier.map((u) => u.stats.handle)) : [];
        } finally {
          earlier.forEach((u) => u.stats.dispose());
        }
        const mine = result as StepNumbers;
        if (!scaler || mine.applied) state.scheduler_step = schedulerStep() + 1;
        const now = performance.now();
        account([...earlier.map((u, i) => ({ ...u, n: numbers[i]! })), { ...entry, n: mine }], now - groupStart);
        groupStart = now;
        if (evalHere) await runEval(epochOfStep);
        if (saveHere) {
          state.grad_scaler = scaler ? scaler.snapshot() : null;
          const dir = checkpointDir(c.out, step);
          await saveCheckpoint(dir, { model, optimizer, state, weights });
          pruneCheckpoints(c.out, c.keepCheckpoints);
          lastCheckpoint = dir;
          progress.note(`saved checkpoint ${dir}`);
        }
        groupStart = performance.now();
      }
      await runEval(state.epoch);
    } finally {
      unread.forEach((u) => u.stats.dispose());
      (await ready.catch(() => [])).forEach(disposeBatch);
      progress.end();
      log.close();
    }

    model.train(false);
    const weightFiles = await weights.save(model, c.out);
    state.grad_scaler = scaler ? scaler.snapshot() : null;
    writeFileAtomicSync(join(c.out, TRAINER_STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
    const { total, trainable } = model.parameterCount();
    return { steps: state.global_step, losses, lastEval, out: c.out, weightFiles, trainable: { count: trainable, total }, mixedPrecision: mixed, skippedSteps };
  } finally {
    optimizer.dispose();
    scaler?.dispose();
    stopFlag?.dispose();
  }
}
