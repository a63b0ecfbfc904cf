// The training layer's part of the native addon: optimizers, gradient clipping, RNG state and
// the training step (csrc/optim, csrc/train).
import type { ObjectHandle, TensorHandle } from '../torch/native-types.ts';

export type OptimizerHandle = ObjectHandle<'Optimizer'>;
export type OptimizerKind = 'adamw' | 'sgd';
/** auto: fused kernels when every parameter of a group is on CUDA, PyTorch's single-tensor path otherwise. */
export type OptimizerImplementation = 'auto' | 'single' | 'fused';

export interface NativeParamGroup {
  name?: string;
  params: TensorHandle[];
  names: string[];
  lr?: number;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  amsgrad?: boolean;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

export interface NativeGroupInfo {
  name: string;
  names: string[];
  lr: number;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  amsgrad?: boolean;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

export interface TrainAddon {
  optimizerNew(kind: OptimizerKind, groups: NativeParamGroup[], implementation?: OptimizerImplementation): OptimizerHandle;
  optimizerStep(opt: OptimizerHandle, lrs?: number[] | null): void;
  optimizerZeroGrad(opt: OptimizerHandle, setToNone?: boolean): void;
  optimizerSetLearningRates(opt: OptimizerHandle, lrs: number[]): void;
  optimizerGroups(opt: OptimizerHandle): NativeGroupInfo[];
  optimizerState(opt: OptimizerHandle): Record<string, TensorHandle>;
  optimizerLoadState(opt: OptimizerHandle, tensors: Record<string, TensorHandle>, source?: string): void;
  clipGradNorm(params: TensorHandle[], maxNorm: number, normType?: number, errorIfNonfinite?: boolean): TensorHandle;
  totalGradNorm(params: TensorHandle[], normType?: number): TensorHandle;
  disposeHandle(h: ObjectHandle<string>): void;
}
