// Which parameters a run trains and how its result is saved. This is the seam to the PEFT layer
// (lib/peft: masks, presets ln/ffn/attn/lora/bitfit, adapters): until it is merged, only 'full'
// (every parameter) is known here. The trainer itself only reads requiresGrad flags.
import type { Model } from '../models/model.ts';
import { trainableTensorsIO, type TrainedWeightsIO } from './checkpoint.ts';
import { trainableParameterLine } from './trainer.ts';

export interface MethodOptions {
  method: string;
  /** Method-specific settings (scope, extra globs, LoRA rank ...) as the PEFT layer defines them. */
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
export const METHOD_FLAGS: Record<string, { type: 'string' | 'boolean'; help: string }> = {};

export const KNOWN_METHODS = ['full'] as const;

export function applyTuningMethod(model: Model, opts: MethodOptions): TuningSetup {
  if (opts.method !== 'full') {
    throw new Error(`unknown tuning method '${opts.method}': this build knows ${KNOWN_METHODS.join(', ')} (ln, ffn, attn, lora and bitfit come with the PEFT layer)`);
  }
  model.setRequiresGrad('all', true);
  return { method: 'full', report: trainableParameterLine, weights: trainableTensorsIO, describe: { method: 'full' } };
}
