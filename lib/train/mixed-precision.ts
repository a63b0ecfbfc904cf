// Mixed-precision training (bf16 / fp16) as PyTorch users run it: frozen weights in the half
// dtype the model was loaded in, trainable tensors as float32 masters with float32 optimizer
// state, every forward under autocast to the half dtype (csrc/train/mixed_precision.cpp,
// csrc/runtime/autocast.h). fp16 adds dynamic loss scaling with torch.amp.GradScaler's rules.
import type { Model } from '../models/model.ts';
import { full } from '../torch/creation.ts';
import { nativePart } from '../torch/native.ts';
import type { ModelHandle } from '../models/native-types.ts';
import type { Device } from '../torch/device.ts';
import type { Tensor } from '../torch/tensor.ts';

export type ComputeDType = 'bfloat16' | 'float16';

interface MixedPrecisionAddon {
  modelMixedPrecision(model: ModelHandle, dtype?: ComputeDType | 'off' | null): { computeDType: ComputeDType | null; promoted: string[] };
  modelComputeDType(model: ModelHandle): ComputeDType | null;
}

export interface MixedPrecision {
  /** The autocast dtype of every forward, or null: the model computes in float32. */
  computeDType: ComputeDType | null;
  /** Trainable half-precision parameters that became float32 masters. */
  promoted: string[];
}

/**
 * Makes a model loaded in bf16 / fp16 train in mixed precision: trainable half parameters become
 * float32 masters (ties kept) and every forward runs under autocast to `dtype` (default: the
 * model's half dtype; a float32 model is left as it is). Call it after the tuning method set the
 * trainable parameters and before building the optimizer. `'off'` removes the autocast.
 */
export function setupMixedPrecision(model: Model, dtype?: ComputeDType | 'off'): MixedPrecision {
  return nativePart<MixedPrecisionAddon>().modelMixedPrecision(model.handle, dtype ?? null);
}

/** The autocast dtype the model's forwards run under (null: none). */
export function computeDType(model: Model): ComputeDType | null {
  return nativePart<MixedPrecisionAddon>().modelComputeDType(model.handle);
}

/** torch.amp.GradScaler's settings (its defaults). */
export interface GradScalerConfig {
  initScale: number;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
}

export const GRAD_SCALER_DEFAULTS: GradScalerConfig = { initScale: 2 ** 16, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2000 };

/** What a checkpoint keeps of a scaler (GradScaler.state_dict()'s numbers). */
export interface GradScalerSnapshot {
  scale: number;
  growth_tracker: number;
  growth_factor: number;
  backoff_factor: number;
  growth_interval: number;
}

/**
 * The scaler's state on the model's device: the scale (float32) and the count of good steps since
 * the last change (int32), updated in place by each training step (torch._amp_update_scale_).
 */
export class GradScalerState {
  readonly scale: Tensor;
  readonly growthTracker: Tensor;
  constructor(readonly config: GradScalerConfig, device: Device) {
    if (!(config.initScale > 0) || !Number.isFinite(config.initScale)) throw new RangeError(`grad scaler: init scale must be a positive number, got ${config.initScale}`);
    if (!(config.growthFactor > 1)) throw new RangeError(`grad scaler: growth factor must be > 1, got ${config.growthFactor}`);
    if (!(config.backoffFactor > 0 && config.backoffFactor < 1)) throw new RangeError(`grad scaler: backoff factor must be in (0, 1), got ${config.backoffFactor}`);
    if (!Number.isSafeInteger(config.growthInterval) || config.growthInterval < 1) throw new RangeError(`grad scaler: growth interval must be a positive whole number, got ${config.growthInterval}`);
    this.scale = full([], config.initScale, { dtype: 'float32', device });
    this.growthTracker = full([], 0, { dtype: 'int32', device });
  }

  /** The options trainStep takes. */
  stepOptions(): { scale: Tensor['handle']; growthTracker: Tensor['handle']; growthFactor: number; backoffFactor: number; growthInterval: number } {
    const c = this.config;
    return { scale: this.scale.handle, growthTracker: this.growthTracker.handle, growthFactor: c.growthFactor, backoffFactor: c.backoffFactor, growthInterval: c.growthInterval };
  }

  /** Reads the device (for checkpoints and logs, not inside a step). */
  snapshot(): GradScalerSnapshot {
    const c = this.config;
    return { scale: this.scale.item(), growth_tracker: this.growthTracker.item(), growth_factor: c.growthFactor, backoff_factor: c.backoffFactor, growth_interval: c.growthInterval };
  }

  restore(s: GradScalerSnapshot): void {
    this.scale.fill_(s.scale);
    this.growthTracker.fill_(s.growth_tracker);
  }

  dispose(): void {
    this.scale.dispose();
    this.growthTracker.dispose();
  }
}
