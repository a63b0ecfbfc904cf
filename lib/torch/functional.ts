// Free functions over tensors (PyTorch's torch.* and torch.nn.functional.*).
import { native } from './native.ts';
import type { Reduction, Scalar } from './native-types.ts';
import { type Operand, type Shape, Tensor, wrap } from './tensor.ts';

const hOf = (x: Operand) => (x instanceof Tensor ? x.handle : x);

export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  return wrap(native().cat(tensors.map((t) => t.handle), dim));
}
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  return wrap(native().stack(tensors.map((t) => t.handle), dim));
}
export function where(condition: Tensor, a: Operand, b: Operand): Tensor {
  return wrap(native().where(condition.handle, hOf(a), hOf(b)));
}
export function matmul(a: Tensor, b: Tensor): Tensor {
  return wrap(native().matmul(a.handle, b.handle));
}
/** Elementwise ops with a scalar first operand, e.g. sub(1, t). */
export function add(a: Operand, b: Operand): Tensor { return wrap(native().add(hOf(a), hOf(b))); }
export function sub(a: Operand, b: Operand): Tensor { return wrap(native().sub(hOf(a), hOf(b))); }
export function mul(a: Operand, b: Operand): Tensor { return wrap(native().mul(hOf(a), hOf(b))); }
export function div(a: Operand, b: Operand): Tensor { return wrap(native().div(hOf(a), hOf(b))); }
export function allclose(a: Tensor, b: Tensor, rtol = 1e-5, atol = 1e-8): boolean {
  return native().allclose(a.handle, b.handle, rtol, atol);
}
export function equal(a: Tensor, b: Tensor): boolean {
  return native().equal(a.handle, b.handle);
}

/** torch.nn.functional equivalents. */
export const F = {
  softmax: (x: Tensor, dim: number) => wrap(native().softmax(x.handle, dim)),
  logSoftmax: (x: Tensor, dim: number) => wrap(native().logSoftmax(x.handle, dim)),
  relu: (x: Tensor) => x.relu(),
  gelu: (x: Tensor, approximate: 'none' | 'tanh' = 'none') => x.gelu(approximate),
  silu: (x: Tensor) => x.silu(),
  linear: (x: Tensor, weight: Tensor, bias?: Tensor) => wrap(native().linear(x.handle, weight.handle, bias?.handle ?? null)),
  layerNorm: (x: Tensor, shape: Shape, weight?: Tensor, bias?: Tensor, eps = 1e-5) =>
    wrap(native().layerNorm(x.handle, shape, weight?.handle ?? null, bias?.handle ?? null, eps)),
  rmsNorm: (x: Tensor, shape: Shape, weight?: Tensor, eps?: number) => wrap(native().rmsNorm(x.handle, shape, weight?.handle ?? null, eps ?? null)),
  dropout: (x: Tensor, p: number, train = true) => wrap(native().dropout(x.handle, p, train)),
  embedding: (weight: Tensor, indices: Tensor) => wrap(native().embedding(weight.handle, indices.handle)),
  conv2d: (x: Tensor, weight: Tensor, bias?: Tensor, opts: { stride?: Shape; padding?: Shape; dilation?: Shape; groups?: number } = {}) =>
    wrap(native().conv2d(x.handle, weight.handle, bias?.handle ?? null, opts.stride ?? null, opts.padding ?? null, opts.dilation ?? null, opts.groups ?? null)),
  scaledDotProductAttention: (q: Tensor, k: Tensor, v: Tensor, opts: { mask?: Tensor; dropoutP?: number; isCausal?: boolean; scale?: number; enableGqa?: boolean } = {}) =>
    wrap(native().scaledDotProductAttention(q.handle, k.handle, v.handle, opts.mask?.handle ?? null, opts.dropoutP ?? 0, opts.isCausal ?? false, opts.scale ?? null, opts.enableGqa ?? false)),
  interpolate: (x: Tensor, size: Shape, mode: 'bilinear' | 'bicubic' | 'nearest', opts: { alignCorners?: boolean; antialias?: boolean } = {}) =>
    wrap(native().interpolate(x.handle, size, mode, opts.alignCorners ?? false, opts.antialias ?? false)),
  pad: (x: Tensor, pads: Shape, mode: 'constant' | 'reflect' | 'replicate' = 'constant', value = 0) => wrap(native().pad(x.handle, pads, mode, value)),
  oneHot: (x: Tensor, numClasses = -1) => wrap(native().oneHot(x.handle, numClasses)),
  crossEntropy: (logits: Tensor, target: Tensor, opts: { weight?: Tensor; reduction?: Reduction; ignoreIndex?: number; labelSmoothing?: number } = {}) =>
    wrap(native().crossEntropy(logits.handle, target.handle, opts.weight?.handle ?? null, opts.reduction ?? 'mean', opts.ignoreIndex ?? -100, opts.labelSmoothing ?? 0)),
  nllLoss: (logProbs: Tensor, target: Tensor, opts: { weight?: Tensor; reduction?: Reduction; ignoreIndex?: number } = {}) =>
    wrap(native().nllLoss(logProbs.handle, target.handle, opts.weight?.handle ?? null, opts.reduction ?? 'mean', opts.ignoreIndex ?? -100)),
  binaryCrossEntropyWithLogits: (logits: Tensor, target: Tensor, opts: { weight?: Tensor; posWeight?: Tensor; reduction?: Reduction } = {}) =>
    wrap(native().bceWithLogits(logits.handle, target.handle, opts.weight?.handle ?? null, opts.posWeight?.handle ?? null, opts.reduction ?? 'mean')),
  mseLoss: (a: Tensor, b: Tensor, reduction: Reduction = 'mean') => wrap(native().mseLoss(a.handle, b.handle, reduction)),
  l1Loss: (a: Tensor, b: Tensor, reduction: Reduction = 'mean') => wrap(native().l1Loss(a.handle, b.handle, reduction)),
};

export type { Scalar };
