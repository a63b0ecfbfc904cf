// The training configuration: every knob with its default, validated in one place, and written
// to the output directory as training_config.json so a run can be repeated (or resumed) exactly.
import type { GradScalerConfig } from './mixed-precision.ts';
import { NO_DECAY_RULES, type NoDecayRule } from './param-groups.ts';
import { SCHEDULES, type ScheduleName } from './schedule.ts';

export type TaskName = 'vqa' | 'report' | 'classify';
export type OptimizerName = 'adamw' | 'sgd';
export type TrainDType = 'fp32' | 'bf16' | 'fp16';

export interface TrainConfig {
  /** Length of the run: exactly one of steps (optimizer steps) and epochs. */
  steps: number | null;
  epochs: number | null;
  batchSize: number;
  gradAccum: number;
  optimizer: OptimizerName;
  lr: number;
  /** AdamW: decoupled decay; SGD: L2 penalty. Default 0 (the HF Trainer's). */
  weightDecay: number;
  betas: [number, number];
  eps: number;
  momentum: number;
  nesterov: boolean;
  noDecay: NoDecayRule;
  /** 'auto': fused kernels when every trainable parameter is on CUDA; 'fused' forces them (CPU too), 'single' forbids. */
  optimizerImplementation: 'auto' | 'single' | 'fused';
  /** MAE-style layer-wise lr decay (null: off). */
  layerDecay: number | null;
  schedule: ScheduleName;
  /** Warmup steps (>= 1) or fraction of the run (< 1). */
  warmup: number;
  /** Clip the global gradient norm to this (HF Trainer default 1.0); 0 disables clipping. */
  maxGradNorm: number;
  seed: number;
  shuffle: boolean;
  dropLast: boolean;
  /** Evaluate every N optimizer steps (and at the end) when there is a validation set; null: only at the end. */
  evalEvery: number | null;
  evalBatchSize: number | null;
  /** Save a checkpoint every N optimizer steps (null: only the final output). */
  saveEvery: number | null;
  /** How many checkpoint-<step> directories to keep (oldest removed first). */
  keepCheckpoints: number;
  /** Activation checkpointing per transformer layer (recompute in backward: less memory, ~1/3 more compute). */
  gradientCheckpointing: boolean;
  /** Language models: tokens per chunk of the chunked cross-entropy (no whole logits); 0 = whole logits. */
  lossChunkTokens: number;
  out: string;
  /** JSONL step log (default <out>/train_log.jsonl). */
  log: string | null;
  /**
   * Read the steps' numbers (loss, gradient norm ...) from the device every N optimizer steps
   * (HF's logging_steps): steps in between do not wait for the device. Every step still gets its
   * log line, written when its numbers are read; a non-finite step is found then, with the weights
   * of the last good step (the steps after it were skipped on the device). Default 1.
   */
  logEvery: number;
  /**
   * A model loaded in bf16 / fp16 trains in mixed precision (float32 trainable masters and
   * optimizer state, autocast compute); false trains the half-precision weights directly.
   */
  mixedPrecision: boolean;
  /** fp16 dynamic loss scaling (torch.amp.GradScaler's settings; its defaults); null: none. Ignored for bf16 / fp32. */
  gradScaler: Partial<GradScalerConfig> | null;
}

// The HF Trainer's defaults (TrainingArguments), so a run without flags means the same thing as
// a Trainer run; the optimizers' own defaults (createOptimizer) are torch.optim's.
export const DEFAULT_TRAIN_CONFIG: Omit<TrainConfig, 'out'> = {
  steps: null,
  epochs: 3,
  batchSize: 8,
  gradAccum: 1,
  optimizer: 'adamw',
  lr: 5e-5,
  weightDecay: 0.0,
  betas: [0.9, 0.999],
  eps: 1e-8,
  momentum: 0,
  nesterov: false,
  noDecay: 'norm-bias',
  optimizerImplementation: 'auto',
  layerDecay: null,
  schedule: 'linear',
  warmup: 0,
  maxGradNorm: 1.0,
  seed: 42,
  shuffle: true,
  dropLast: false,
  evalEvery: null,
  evalBatchSize: null,
  saveEvery: null,
  keepCheckpoints: 2,
  gradientCheckpointing: false,
  lossChunkTokens: 1024,
  log: null,
  logEvery: 1,
  mixedPrecision: true,
  gradScaler: {},
};

export class TrainConfigError extends Error {
  override name = 'TrainConfigError';
}

function positiveInt(name: string, v: number | null, allowNull = false): void {
  if (v === null && allowNull) return;
  if (v === null || !Number.isSafeInteger(v) || v < 1) throw new TrainConfigError(`${name} must be a positive whole number, got ${v}`);
}

/** Fills defaults and checks every value; errors name the setting. */
export function resolveTrainConfig(partial: Partial<TrainConfig> & { out: string }): TrainConfig {
  const c: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, ...partial };
  if (partial.steps != null && partial.epochs == null) c.epochs = null;
  if (c.steps !== null && c.epochs !== null) throw new TrainConfigError('give either steps or epochs, not both');
  if (c.steps === null && c.epochs === null) throw new TrainConfigError('give steps or epochs');
  positiveInt('steps', c.steps, true);
  positiveInt('epochs', c.epochs, true);
  positiveInt('batch size', c.batchSize);
  positiveInt('gradient accumulation', c.gradAccum);
  positiveInt('eval every', c.evalEvery, true);
  positiveInt('eval batch size', c.evalBatchSize, true);
  positiveInt('save every', c.saveEvery, true);
  positiveInt('keep checkpoints', c.keepCheckpoints);
  positiveInt('log every', c.logEvery);
  if (c.optimizer !== 'adamw' && c.optimizer !== 'sgd') throw new TrainConfigError(`optimizer must be adamw or sgd, got '${c.optimizer}'`);
  if (!(c.lr >= 0) || !Number.isFinite(c.lr)) throw new TrainConfigError(`learning rate must be a non-negative number, got ${c.lr}`);
  if (!(c.weightDecay >= 0)) throw new TrainConfigError(`weight decay must be non-negative, got ${c.weightDecay}`);
  if (!(c.momentum >= 0)) throw new TrainConfigError(`momentum must be non-negative, got ${c.momentum}`);
  if (!(NO_DECAY_RULES as readonly string[]).includes(c.noDecay)) throw new TrainConfigError(`no-decay rule must be one of ${NO_DECAY_RULES.join(', ')}, got '${c.noDecay}'`);
  if (!['auto', 'single', 'fused'].includes(c.optimizerImplementation)) throw new TrainConfigError(`optimizer implementation must be auto, single or fused, got '${c.optimizerImplementation}'`);
  if (c.layerDecay !== null && !(c.layerDecay > 0 && c.layerDecay <= 1)) throw new TrainConfigError(`layer decay must be in (0, 1], got ${c.layerDecay}`);
  if (!(SCHEDULES as readonly string[]).includes(c.schedule)) throw new TrainConfigError(`schedule must be one of ${SCHEDULES.join(', ')}, got '${c.schedule}'`);
  if (!(c.warmup >= 0) || !Number.isFinite(c.warmup)) throw new TrainConfigError(`warmup must be a number of steps (>= 1) or a fraction (< 1), got ${c.warmup}`);
  if (!(c.maxGradNorm >= 0)) throw new TrainConfigError(`max grad norm must be non-negative (0 disables clipping), got ${c.maxGradNorm}`);
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) throw new TrainConfigError(`seed must be a non-negative whole number, got ${c.seed}`);
  if (typeof c.gradientCheckpointing !== 'boolean') throw new TrainConfigError(`gradient checkpointing must be true or false, got ${String(c.gradientCheckpointing)}`);
  if (!Number.isSafeInteger(c.lossChunkTokens) || c.lossChunkTokens < 0) throw new TrainConfigError(`loss chunk size must be a whole number of tokens >= 0 (0: whole logits), got ${c.lossChunkTokens}`);
  if (c.optimizer === 'sgd' && c.nesterov && c.momentum <= 0) throw new TrainConfigError('nesterov needs a momentum > 0');
  return c;
}
