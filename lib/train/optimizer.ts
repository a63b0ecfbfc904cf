// Optimizers with torch.optim's update rules and defaults, over native state (csrc/optim). The
// parameters are the model's own tensors, addressed by their Hugging Face names; groups carry
// their own learning rate and weight decay (no-decay groups, layer-wise lr decay).
import { nativePart } from '../torch/native.ts';
import { Tensor } from '../torch/tensor.ts';
import type { NativeGroupInfo, OptimizerHandle, OptimizerImplementation, OptimizerKind, TrainAddon } from './native-types.ts';

const addon = () => nativePart<TrainAddon>();

export interface NamedTensor {
  name: string;
  tensor: Tensor;
}

export interface AdamWOptions {
  lr?: number;
  /** (beta1, beta2); torch's default (0.9, 0.999). */
  betas?: readonly [number, number];
  /** torch's default 1e-8. */
  eps?: number;
  /** Decoupled weight decay; torch.optim.AdamW's default 0.01. */
  weightDecay?: number;
  amsgrad?: boolean;
}

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  /** L2 penalty added to the gradient (torch.optim.SGD); default 0. */
  weightDecay?: number;
  nesterov?: boolean;
}

export type OptimizerSpec = ({ kind: 'adamw' } & AdamWOptions) | ({ kind: 'sgd' } & SGDOptions);

/** A parameter group: its own lr / weight decay override the optimizer's. */
export interface ParamGroup {
  name?: string;
  params: readonly NamedTensor[];
  lr?: number;
  weightDecay?: number;
}

export const DEFAULT_LR = 1e-3;

export interface OptimizerCreateOptions {
  implementation?: OptimizerImplementation;
}

export class Optimizer {
  readonly #handle: OptimizerHandle;
  readonly kind: OptimizerKind;
  /** Each group's lr at creation: the schedule multiplies these (torch's LambdaLR base_lrs). */
  readonly baseLrs: readonly number[];
  #disposed = false;

  /** @internal use createOptimizer() */
  constructor(handle: OptimizerHandle, kind: OptimizerKind) {
    this.#handle = handle;
    this.kind = kind;
    this.baseLrs = addon().optimizerGroups(handle).map((g) => g.lr);
  }

  /** @internal the native handle, for the training step. */
  get handle(): OptimizerHandle {
    if (this.#disposed) throw Object.assign(new Error('the optimizer was disposed'), { code: 'MEDTUNE_DISPOSED' });
    return this.#handle;
  }

  /** The groups as the native optimizer holds them (current lr, hyper-parameters, parameter names). */
  get groups(): NativeGroupInfo[] {
    return addon().optimizerGroups(this.handle);
  }

  get parameterNames(): string[] {
    return this.groups.flatMap((g) => g.names);
  }

  /** Sets each group's learning rate (one per group). */
  setLearningRates(lrs: readonly number[]): void {
    addon().optimizerSetLearningRates(this.handle, [...lrs]);
  }

  /** One update of every parameter that has a gradient; `lrs` (one per group) set the groups' lr first. */
  step(lrs?: readonly number[]): void {
    addon().optimizerStep(this.handle, lrs ? [...lrs] : null);
  }

  /** Drops the gradients (setToNone, torch's default) or zeroes them. */
  zeroGrad(setToNone = true): void {
    addon().optimizerZeroGrad(this.handle, setToNone);
  }

  /** Copies of the per-parameter state: "<param>.step", "<param>.exp_avg", "<param>.momentum_buffer" ... */
  state(): Record<string, Tensor> {
    const handles = addon().optimizerState(this.handle);
    return Object.fromEntries(Object.entries(handles).map(([k, h]) => [k, Tensor.fromHandle(h)]));
  }

  /** Restores state saved by state(); names and shapes are checked before anything changes. */
  loadState(tensors: Record<string, Tensor>, source = 'optimizer state'): void {
    addon().optimizerLoadState(this.handle, Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, t.handle])), source);
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Releases the state (moments, buffers). The parameters stay with their model. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    addon().disposeHandle(this.#handle);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

function isGroupList(x: readonly ParamGroup[] | readonly NamedTensor[]): x is readonly ParamGroup[] {
  return x.length > 0 && 'params' in x[0]!;
}

/**
 * An optimizer over named parameters or parameter groups, with torch.optim's defaults
 * (AdamW: lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.01; SGD: no momentum, no decay).
 */
export function createOptimizer(spec: OptimizerSpec, params: readonly ParamGroup[] | readonly NamedTensor[], opts: OptimizerCreateOptions = {}): Optimizer {
  const groups: readonly ParamGroup[] = isGroupList(params) ? params : [{ params: params as readonly NamedTensor[] }];
  const lr = spec.lr ?? DEFAULT_LR;
  const native = groups.map((g, i) => {
    const common = {
      name: g.name ?? `group_${i}`,
      params: g.params.map((p) => p.tensor.handle),
      names: g.params.map((p) => p.name),
      lr: g.lr ?? lr,
    };
    if (spec.kind === 'adamw') {
      return {
        ...common,
        weightDecay: g.weightDecay ?? spec.weightDecay ?? 0.01,
        beta1: spec.betas?.[0] ?? 0.9,
        beta2: spec.betas?.[1] ?? 0.999,
        eps: spec.eps ?? 1e-8,
        amsgrad: spec.amsgrad ?? false,
      };
    }
    return {
      ...common,
      weightDecay: g.weightDecay ?? spec.weightDecay ?? 0,
      momentum: spec.momentum ?? 0,
      dampening: spec.dampening ?? 0,
      nesterov: spec.nesterov ?? false,
    };
  });
  return new Optimizer(addon().optimizerNew(spec.kind, native, opts.implementation ?? 'auto'), spec.kind);
}

/**
 * torch.nn.utils.clip_grad_norm_: scales the gradients so their global norm is at most maxNorm
 * and returns the norm before clipping.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number, normType = 2): Tensor {
  return Tensor.fromHandle(addon().clipGradNorm(params.map((p) => p.handle), maxNorm, normType));
}

/** The global norm of the parameters' gradients (no clipping). */
export function totalGradNorm(params: readonly Tensor[], normType = 2): Tensor {
  return Tensor.fromHandle(addon().totalGradNorm(params.map((p) => p.handle), normType));
}
