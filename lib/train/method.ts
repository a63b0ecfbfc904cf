// Which parameters a run trains and how its result is saved: the seam to the PEFT layer
// (lib/peft: masks, presets ln/ffn/attn/bitfit/full/lora, LoRA/DoRA adapters, PEFT adapter files).
// The trainer itself only reads requiresGrad flags.
import type { Model } from '../models/model.ts';
import {
  applyMethod, MethodError, presetNames, resolveMethod, restoreTrainedOutput, saveTrainedOutput, scopeNames, trainableReport, type MethodSpec,
} from '../peft/index.ts';
import { manualSeed } from '../torch/runtime.ts';
import type { TrainedWeightsIO } from './checkpoint.ts';

export interface MethodOptions {
  method: string;
  /** Method-specific settings: the METHOD_FLAGS below, by flag name (CLI strings or typed values). */
  [option: string]: unknown;
}

export interface TuningSetup {
  method: string;
  /** The report printed before step 1. */
  report: (model: Model) => string;
  /** How the trained result is written (and restored on resume). */
  weights: TrainedWeightsIO;
  /** Recorded in training_config.json. */
  describe: Record<string, unknown>;
}

/** CLI flags the methods take (name -> parseArgs option + help), merged into `medtune train`. */
export const METHOD_FLAGS: Record<string, { type: 'string' | 'boolean'; help: string }> = {
  scope: { type: 'string', help: `part of the model the method tunes: ${scopeNames().join(' | ')} (default all)` },
  'train-extra': { type: 'string', help: 'parameter globs trained too, comma-separated (classifier; head,fc_norm; multi_modal_projector)' },
  'lora-r': { type: 'string', help: 'LoRA rank (default 8)' },
  'lora-alpha': { type: 'string', help: 'LoRA alpha; scaling alpha / r (default 8)' },
  'lora-dropout': { type: 'string', help: 'dropout on the LoRA input (default 0)' },
  'lora-targets': { type: 'string', help: 'Linear layers to adapt: q_proj,v_proj | query,value | qkv[q,v] | globs | re:... (default: q and v)' },
  rslora: { type: 'boolean', help: 'rank-stabilised scaling alpha / sqrt(r)' },
  dora: { type: 'boolean', help: 'DoRA: LoRA with a trained magnitude per output row' },
  'init-adapter': { type: 'string', help: 'start LoRA from this PEFT adapter directory (its config sets r, alpha, targets)' },
  'adapter-names': { type: 'string', help: 'names in the saved adapter: transformers5 (as peft 0.21 writes under transformers 5; default) | checkpoint (transformers 4.x)' },
};

export const KNOWN_METHODS = presetNames();

function numberOption(opts: MethodOptions, flag: string, integer = false): number | undefined {
  const v = opts[flag];
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (typeof v === 'string' && v.trim() === '') throw new MethodError(`--${flag} needs a value`);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new MethodError(`--${flag} must be ${integer ? 'an integer' : 'a number'}, got '${String(v)}'`);
  return n;
}

/** The CLI's method flags as a MethodSpec for lib/peft. */
export function methodSpecFromOptions(opts: MethodOptions): MethodSpec {
  const str = (flag: string) => (opts[flag] === undefined || opts[flag] === null ? undefined : String(opts[flag]));
  const bool = (flag: string) => (opts[flag] === undefined ? undefined : Boolean(opts[flag]));
  const lora = {
    r: numberOption(opts, 'lora-r', true),
    alpha: numberOption(opts, 'lora-alpha'),
    dropout: numberOption(opts, 'lora-dropout'),
    targets: str('lora-targets'),
    rslora: bool('rslora'),
    dora: bool('dora'),
    initAdapter: str('init-adapter'),
  };
  const scope = str('scope');
  const trainExtra = str('train-extra');
  return {
    method: opts.method,
    ...(scope !== undefined ? { scope } : {}),
    ...(trainExtra !== undefined ? { trainExtra } : {}),
    ...(Object.values(lora).some((x) => x !== undefined) ? { lora } : {}),
  };
}

/**
 * Applies the method to a freshly loaded model. `seed` seeds the draws of new LoRA weights (as
 * torch.manual_seed before get_peft_model); `baseModel` is recorded in the saved adapter.
 */
export async function applyTuningMethod(model: Model, opts: MethodOptions & { seed?: number; baseModel?: string | null }): Promise<TuningSetup> {
  const plan = resolveMethod(methodSpecFromOptions(opts));
  const keyStyle = opts['adapter-names'] === undefined ? 'transformers5' : String(opts['adapter-names']);
  if (keyStyle !== 'transformers5' && keyStyle !== 'checkpoint') throw new MethodError(`--adapter-names must be transformers5 or checkpoint, got '${keyStyle}'`);
  if (typeof opts.seed === 'number') manualSeed(opts.seed);
  const applied = await applyMethod(model, plan);
  const baseModel = opts.baseModel ?? null;
  return {
    method: plan.method,
    report: (m) => [trainableReport(m, applied).text, ...applied.warnings.map((w) => `warning: ${w}`)].join('\n'),
    weights: {
      save: (m, dir) => saveTrainedOutput(m, applied, dir, { baseModel, keyStyle }),
      load: (m, dir) => restoreTrainedOutput(m, applied, dir),
    },
    describe: { method: plan.method, method_plan: plan },
  };
}
