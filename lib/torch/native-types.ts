// The native addon's function table, typed. Handles are opaque: only the addon reads them.
import type { DType } from './dtype.ts';

declare const handleBrand: unique symbol;
/** A native tensor handle (a Node-API external owning an at::Tensor reference). */
export type TensorHandle = { readonly [handleBrand]: 'tensor' };
/** A native handle to some other C++ object (generator, module, optimizer ...). */
export type ObjectHandle<Kind extends string> = { readonly [handleBrand]: Kind };

export type Scalar = number | boolean;
type H = TensorHandle;
type N = number | null | undefined;
type D = DType | null | undefined;
type Dev = string | null | undefined;

/** Encoded index spec: number, null (new axis), '...', boolean, tensor, [start, end, step] slice. */
export type NativeIndex = number | null | '...' | boolean | H | [N, N, N];

export type BinaryOpName =
  | 'add' | 'sub' | 'mul' | 'div' | 'floorDivide' | 'pow' | 'remainder' | 'fmod' | 'maximum' | 'minimum' | 'atan2'
  | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'logicalAnd' | 'logicalOr' | 'logicalXor'
  | 'matmul' | 'mm' | 'bmm' | 'outer' | 'dot';
export type UnaryOpName =
  | 'neg' | 'abs' | 'exp' | 'log' | 'log1p' | 'expm1' | 'log2' | 'sqrt' | 'rsqrt' | 'square' | 'reciprocal' | 'sign'
  | 'sin' | 'cos' | 'tan' | 'tanh' | 'sigmoid' | 'relu' | 'silu' | 'erf' | 'floor' | 'ceil' | 'round' | 'trunc'
  | 'logicalNot' | 'isnan' | 'isinf' | 'isfinite' | 'clone' | 'contiguous' | 'detach';
export type InPlaceOpName = 'addInPlace' | 'subInPlace' | 'mulInPlace' | 'divInPlace' | 'copyInPlace' | 'fillInPlace';
export type Reduction = 'mean' | 'sum' | 'none';

export interface BuildInfo {
  torchVersion: string;
  torchRoot: string;
  variant: 'cpu' | 'cuda';
  /** The CUDA version compiled in, as torch.version.cuda ("13.0"); null for a CPU build. */
  cudaVersion: string | null;
  cxx11Abi: boolean;
  napiVersion: number;
  /** A relocatable prebuilt binary (npm run prebuild), not a source build. */
  prebuild: boolean;
}

/** A visible CUDA device (csrc/cuda/device_info.cpp). */
export interface CudaDeviceInfo {
  index: number;
  name: string;
  /** Bytes. */
  totalMemory: number;
  /** Compute capability, "9.0". */
  capability: string;
  multiProcessors: number;
}

/** Whether CUDA is compiled in and usable; `reason` says why not when it is not. */
export interface CudaStatus {
  compiled: boolean;
  deviceCount: number;
  /** The libcudart loaded in the process, "13.0" (null in a CPU build, or when it cannot tell). */
  runtimeVersion: string | null;
  /** The driver's CUDA version, null without a driver. */
  driverVersion: string | null;
  reason: string | null;
}

/** libtorch's CUDA caching-allocator statistics for one device, in bytes (torch.cuda.memory_stats). */
export interface CudaMemoryStats {
  available: true;
  device: number;
  /** Bytes in live tensors (torch.cuda.memory_allocated). */
  allocated: number;
  /** Highest `allocated` since start or the last reset (torch.cuda.max_memory_allocated). */
  peakAllocated: number;
  /** Bytes held from the driver, used or cached (torch.cuda.memory_reserved). */
  reserved: number;
  peakReserved: number;
  active: number;
  /** cudaMalloc failures that made the allocator free its cache and retry. */
  allocRetries: number;
  ooms: number;
}

/** No statistics: CUDA is not compiled in, or no device is visible. */
export interface CudaMemoryUnavailable {
  available: false;
  device: number;
  reason: string;
}

export interface RuntimeInfo {
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  numThreads: number;
  interopThreads: number;
  mkl: boolean;
  mkldnn: boolean;
  openmp: boolean;
  parallelInfo: string;
}

export interface CoreAddon {
  // runtime
  buildInfo(): BuildInfo;
  runtimeInfo(): RuntimeInfo;
  cudaDevices(): CudaDeviceInfo[];
  cudaStatus(): CudaStatus;
  cudaMemoryStats(device: number): CudaMemoryStats | CudaMemoryUnavailable;
  cudaResetPeakMemoryStats(device: number): boolean;
  cudaEmptyCache(): boolean;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number): void;
  liveTensors(): number;
  // creation
  fromTypedArray(data: ArrayBufferView, shape: readonly number[], dtype?: D): H;
  zeros(shape: readonly number[], dtype?: D, device?: Dev): H;
  ones(shape: readonly number[], dtype?: D, device?: Dev): H;
  empty(shape: readonly number[], dtype?: D, device?: Dev): H;
  full(shape: readonly number[], value: Scalar, dtype?: D, device?: Dev): H;
  arange(start: number, end: number, step: number, dtype?: D, device?: Dev): H;
  linspace(start: number, end: number, steps: number, dtype?: D, device?: Dev): H;
  eye(n: number, m?: N, dtype?: D, device?: Dev): H;
  rand(shape: readonly number[], dtype?: D, device?: Dev, generator?: ObjectHandle<'Generator'> | null): H;
  randn(shape: readonly number[], dtype?: D, device?: Dev, generator?: ObjectHandle<'Generator'> | null): H;
  randint(low: number, high: number, shape: readonly number[], dtype?: D, device?: Dev, generator?: ObjectHandle<'Generator'> | null): H;
  randperm(n: number, dtype?: D, device?: Dev, generator?: ObjectHandle<'Generator'> | null): H;
  zerosLike(t: H, dtype?: D): H;
  onesLike(t: H, dtype?: D): H;
  fullLike(t: H, value: Scalar, dtype?: D): H;
  scalarTensor(value: Scalar, dtype?: D, device?: Dev): H;
  generatorNew(seed: number): ObjectHandle<'Generator'>;
  generatorManualSeed(g: ObjectHandle<'Generator'>, seed: number): void;
  generatorInitialSeed(g: ObjectHandle<'Generator'>): number;
  disposeHandle(h: ObjectHandle<string>): void;
  // info
  meta(t: H): { shape: number[]; dtype: DType; device: string };
  strides(t: H): number[];
  flags(t: H): { requiresGrad: boolean; isLeaf: boolean; isContiguous: boolean; storageOffset: number; gradFn: string | null };
  toTypedArray(t: H): ArrayBufferView;
  item(t: H): number | boolean;
  toString(t: H): string;
  to(t: H, dtype?: D, device?: Dev, nonBlocking?: boolean, copy?: boolean): H;
  dispose(t: H): void;
  isDisposed(t: H): boolean;
  isTensor(v: unknown): boolean;
  // math
  clamp(t: H, min?: N, max?: N): H;
  gelu(t: H, approximate?: 'none' | 'tanh'): H;
  leakyRelu(t: H, slope?: number): H;
  where(cond: H, a: H | Scalar, b: H | Scalar): H;
  allclose(a: H, b: H, rtol?: number, atol?: number): boolean;
  equal(a: H, b: H): boolean;
  zeroInPlace(t: H): void;
  // reductions
  sum(t: H, dims?: readonly number[] | number | null, keepdim?: boolean, dtype?: D): H;
  mean(t: H, dims?: readonly number[] | number | null, keepdim?: boolean, dtype?: D): H;
  prod(t: H, dim?: N, keepdim?: boolean): H;
  amax(t: H, dims?: readonly number[] | number | null, keepdim?: boolean): H;
  amin(t: H, dims?: readonly number[] | number | null, keepdim?: boolean): H;
  maxDim(t: H, dim: number, keepdim?: boolean): [H, H];
  minDim(t: H, dim: number, keepdim?: boolean): [H, H];
  argmax(t: H, dim?: N, keepdim?: boolean): H;
  argmin(t: H, dim?: N, keepdim?: boolean): H;
  std(t: H, dims?: readonly number[] | number | null, correction?: N, keepdim?: boolean): H;
  var(t: H, dims?: readonly number[] | number | null, correction?: N, keepdim?: boolean): H;
  norm(t: H, p?: N, dims?: readonly number[] | number | null, keepdim?: boolean): H;
  logsumexp(t: H, dims: readonly number[] | number, keepdim?: boolean): H;
  all(t: H, dim?: N, keepdim?: boolean): H;
  any(t: H, dim?: N, keepdim?: boolean): H;
  cumsum(t: H, dim: number, dtype?: D): H;
  topk(t: H, k: number, dim?: N, largest?: boolean, sorted?: boolean): [H, H];
  sort(t: H, dim?: N, descending?: boolean, stable?: boolean): [H, H];
  argsort(t: H, dim?: N, descending?: boolean, stable?: boolean): H;
  countNonzero(t: H, dim?: N): H;
  // shape
  reshape(t: H, shape: readonly number[]): H;
  view(t: H, shape: readonly number[]): H;
  permute(t: H, dims: readonly number[]): H;
  transpose(t: H, d0: number, d1: number): H;
  flatten(t: H, start?: N, end?: N): H;
  unsqueeze(t: H, dim: number): H;
  squeeze(t: H, dim?: N): H;
  expand(t: H, shape: readonly number[]): H;
  repeat(t: H, reps: readonly number[]): H;
  narrow(t: H, dim: number, start: number, length: number): H;
  select(t: H, dim: number, index: number): H;
  slice(t: H, dim: number, start?: N, end?: N, step?: N): H;
  index(t: H, specs: NativeIndex[]): H;
  indexPut(t: H, specs: NativeIndex[], value: H | Scalar): void;
  indexSelect(t: H, dim: number, index: H): H;
  gather(t: H, dim: number, index: H): H;
  scatter(t: H, dim: number, index: H, src: H | Scalar): H;
  maskedFill(t: H, mask: H, value: Scalar): H;
  maskedSelect(t: H, mask: H): H;
  cat(ts: H[], dim?: number): H;
  stack(ts: H[], dim?: number): H;
  split(t: H, sizes: number | readonly number[], dim?: number): H[];
  chunk(t: H, n: number, dim?: number): H[];
  unbind(t: H, dim?: number): H[];
  flip(t: H, dims: readonly number[]): H;
  roll(t: H, shifts: readonly number[], dims: readonly number[]): H;
  tril(t: H, k?: number): H;
  triu(t: H, k?: number): H;
  nonzero(t: H): H;
  asStrided(t: H, size: readonly number[], stride: readonly number[], storageOffset?: number | null): H;
  viewAsDtype(t: H, dtype: DType): H;
  // nn
  softmax(t: H, dim: number, dtype?: D): H;
  logSoftmax(t: H, dim: number, dtype?: D): H;
  crossEntropy(logits: H, target: H, weight?: H | null, reduction?: Reduction, ignoreIndex?: number, labelSmoothing?: number): H;
  nllLoss(logProbs: H, target: H, weight?: H | null, reduction?: Reduction, ignoreIndex?: number): H;
  bceWithLogits(logits: H, target: H, weight?: H | null, posWeight?: H | null, reduction?: Reduction): H;
  mseLoss(a: H, b: H, reduction?: Reduction): H;
  l1Loss(a: H, b: H, reduction?: Reduction): H;
  linear(x: H, w: H, b?: H | null): H;
  layerNorm(x: H, shape: readonly number[], w?: H | null, b?: H | null, eps?: number): H;
  rmsNorm(x: H, shape: readonly number[], w?: H | null, eps?: number | null): H;
  dropout(x: H, p: number, train?: boolean): H;
  embedding(w: H, idx: H): H;
  conv2d(x: H, w: H, b?: H | null, stride?: readonly number[] | null, padding?: readonly number[] | null, dilation?: readonly number[] | null, groups?: number | null): H;
  scaledDotProductAttention(q: H, k: H, v: H, mask?: H | null, dropoutP?: number, isCausal?: boolean, scale?: number | null, enableGqa?: boolean): H;
  interpolate(x: H, size: readonly number[], mode: 'bilinear' | 'bicubic' | 'nearest', alignCorners?: boolean, antialias?: boolean): H;
  pad(x: H, pads: readonly number[], mode?: string, value?: number | null): H;
  oneHot(t: H, numClasses?: number): H;
  // autograd
  setRequiresGrad(t: H, flag: boolean): void;
  backward(t: H, gradient?: H | null, retainGraph?: boolean): void;
  grad(t: H): H | null;
  setGrad(t: H, g: H | null): void;
  retainGrad(t: H): void;
  setGradEnabled(flag: boolean): boolean;
  isGradEnabled(): boolean;
  autogradGrad(outputs: H[], inputs: H[], gradOutputs?: H[] | null, retainGraph?: boolean | null, createGraph?: boolean, allowUnused?: boolean): (H | null)[];
  // async
  matmulAsync(a: H, b: H): Promise<H>;
  toFloat32Async(t: H): Promise<Float32Array>;
  barrierAsync(): Promise<void>;
  sleepAsync(ms: number, value?: number): Promise<number>;
  failAsync(message: string): Promise<never>;
  queuePending(): number;
}

export type NativeAddon = CoreAddon &
  Record<BinaryOpName, (a: H | Scalar, b: H | Scalar) => H> &
  Record<UnaryOpName, (t: H) => H> &
  Record<InPlaceOpName, (t: H, v: H | Scalar) => void>;
