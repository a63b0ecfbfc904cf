// What each side of a comparison reports, in one shape: lib/compare/medtune-side.ts writes it for
// medtune, scripts/python/compare_reference.py for PyTorch (snake_case, as that JSON is shared).
import type { Device } from '../torch/device.ts';
import type { TrainConfig, TrainDType } from '../train/config.ts';
import type { MethodOptions } from '../train/method.ts';

export interface SideStep {
  loss: number;
  grad_norm: number;
  lr: number;
  /** Wall time of the optimizer step, reading its batches included. */
  step_ms: number;
  samples: number;
  /** attention_mask positions, for token models. */
  tokens?: number;
}

export interface SideResult {
  steps: SideStep[];
  /** Trainable and total parameter counts as each side counts them (peft's get_nb_trainable_parameters there). */
  trainable: { count: number; total: number; tensors: number };
  memory: {
    /** Peak resident set size of the side's own process (getrusage maxrss). */
    peak_rss_bytes: number;
    /** Resident set size when training started (model loaded, method applied). */
    rss_before_training_bytes: number | null;
    /** CUDA caching allocator's peak during training (null on CPU). */
    cuda_peak_allocated_bytes: number | null;
  };
  /** Seconds to load the model and apply the method. */
  load_s: number;
  device: string;
  threads: number;
  versions: Record<string, string>;
  /** PyTorch side, non-adapter methods: parameters only one side's selection trains. */
  selection_mismatch?: { only_pytorch: string[]; only_medtune: string[] } | null;
}

/** The medtune side's job (lib/compare/medtune-worker.ts runs it in its own process). */
export interface MedtuneJob {
  model: string;
  arch: string | null;
  numLabels: number | null;
  dtype: TrainDType;
  device: Device;
  method: MethodOptions;
  /** Resolved, with steps = the compared step count. */
  config: TrainConfig;
  /** The initial trainable weights (an adapter directory or trainable.safetensors directory). */
  init: string;
  batches: string;
  baseModel: string;
  /** Where the result JSON goes. */
  result: string;
}
