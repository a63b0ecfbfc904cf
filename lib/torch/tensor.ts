// The TypeScript face of a native tensor. Every method is one call into libtorch; the result is
// a new Tensor registered with the current tidy() scope. Release is explicit: dispose(),
// `using`, or tidy(); the garbage collector only backs that up.
import type { DType, TypedArrayOf } from './dtype.ts';
import type { Device } from './device.ts';
import { encodeIndex, type IndexSpec } from './indexing.ts';
import { native } from './native.ts';
import type { Reduction, Scalar, TensorHandle } from './native-types.ts';
import { trackInCurrentScope, type Scope, type Tracked } from './scope.ts';

export type Operand = Tensor | Scalar;
export type Shape = readonly number[];
/** Nested arrays of numbers or booleans, as `tensor()` accepts and `toArray()` returns. */
export type NestedArray = number | boolean | readonly NestedArray[];

function h(x: Operand): TensorHandle | Scalar {
  return x instanceof Tensor ? x.handle : x;
}

function dimsArg(dims: number | Shape | undefined): readonly number[] | number | null {
  return dims === undefined ? null : dims;
}

export class Tensor implements Tracked {
  readonly #handle: TensorHandle;
  #meta: { shape: number[]; dtype: DType; device: string } | null = null;
  #disposed = false;
  /** @internal the tidy() scope tracking this tensor */
  scope: Scope | null = null;

  /** @internal Tensors are made by the creation functions (tensor, zeros, ...), not with `new`. */
  constructor(handle: TensorHandle) {
    this.#handle = handle;
    trackInCurrentScope(this);
  }

  /** @internal Wraps a native handle. */
  static fromHandle(handle: TensorHandle): Tensor {
    return new Tensor(handle);
  }

  /** The native handle, for other medtune layers. Using it after dispose() is an Error in native code. */
  get handle(): TensorHandle {
    return this.#handle;
  }

  // ---- metadata -------------------------------------------------------------------------------
  #info(): { shape: number[]; dtype: DType; device: string } {
    return (this.#meta ??= native().meta(this.#handle));
  }
  get shape(): number[] {
    return [...this.#info().shape];
  }
  get dtype(): DType {
    return this.#info().dtype;
  }
  get device(): Device {
    return this.#info().device as Device;
  }
  get ndim(): number {
    return this.#info().shape.length;
  }
  get numel(): number {
    return this.#info().shape.reduce((a, b) => a * b, 1);
  }
  get strides(): number[] {
    return native().strides(this.#handle);
  }
  get isContiguous(): boolean {
    return native().flags(this.#handle).isContiguous;
  }
  get isLeaf(): boolean {
    return native().flags(this.#handle).isLeaf;
  }
  get gradFn(): string | null {
    return native().flags(this.#handle).gradFn;
  }
  size(dim: number): number {
    const shape = this.#info().shape;
    const d = dim < 0 ? dim + shape.length : dim;
    if (d < 0 || d >= shape.length) throw new RangeError(`size(): dim ${dim} out of range for a ${shape.length}-d tensor`);
    return shape[d]!;
  }

  // ---- lifetime -------------------------------------------------------------------------------
  get isDisposed(): boolean {
    return this.#disposed;
  }
  /** Releases the native tensor now. Idempotent; later use is an Error. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.scope?.untrack(this);
    native().dispose(this.#handle);
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---- reading back ---------------------------------------------------------------------------
  /** A copy of the elements in row-major order; float16/bfloat16 come back as Float32Array. */
  toTypedArray<D extends DType = DType>(): TypedArrayOf[D] {
    return native().toTypedArray(this.#handle) as TypedArrayOf[D];
  }
  /** The elements as a flat array of numbers (int64 and bool converted). */
  toNumbers(): number[] {
    return Array.from(this.toTypedArray() as ArrayLike<number | bigint>, Number);
  }
  /** The elements as nested arrays (int64 as numbers, bool as booleans). */
  toArray(): NestedArray {
    const data = this.toTypedArray();
    const isBool = this.dtype === 'bool';
    const flat: (number | boolean)[] = Array.from(data as ArrayLike<number | bigint>, (v) => (isBool ? v !== 0 : Number(v)));
    const shape = this.shape;
    if (shape.length === 0) return flat[0]!;
    const build = (dim: number, offset: number): NestedArray => {
      const n = shape[dim]!;
      const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      const out: NestedArray[] = [];
      for (let i = 0; i < n; i++) out.push(dim === shape.length - 1 ? flat[offset + i]! : build(dim + 1, offset + i * stride));
      return out;
    };
    return build(0, 0);
  }
  /** The value of a one-element tensor. */
  item(): number {
    return Number(native().item(this.#handle));
  }
  /** Copies to float32 on the compute queue, off the main thread. */
  async toFloat32Async(): Promise<Float32Array> {
    return native().toFloat32Async(this.#handle);
  }
  toString(): string {
    return native().toString(this.#handle);
  }

  // ---- conversion -----------------------------------------------------------------------------
  /** `to('cuda')`, `to('bfloat16')`, `to({ device, dtype, nonBlocking, copy })`. */
  to(target: Device | DType | { device?: Device; dtype?: DType; nonBlocking?: boolean; copy?: boolean }): Tensor {
    const n = native();
    if (typeof target === 'string') {
      const isDevice = target === 'cpu' || target.startsWith('cuda');
      return wrap(isDevice ? n.to(this.#handle, null, target) : n.to(this.#handle, target as DType, null));
    }
    return wrap(n.to(this.#handle, target.dtype ?? null, target.device ?? null, target.nonBlocking ?? false, target.copy ?? false));
  }
  float(): Tensor {
    return this.to('float32');
  }
  cpu(): Tensor {
    return this.to('cpu');
  }
  clone(): Tensor {
    return wrap(native().clone(this.#handle));
  }
  contiguous(): Tensor {
    return wrap(native().contiguous(this.#handle));
  }

  // ---- elementwise ----------------------------------------------------------------------------
  add(other: Operand): Tensor { return wrap(native().add(this.#handle, h(other))); }
  sub(other: Operand): Tensor { return wrap(native().sub(this.#handle, h(other))); }
  mul(other: Operand): Tensor { return wrap(native().mul(this.#handle, h(other))); }
  div(other: Operand): Tensor { return wrap(native().div(this.#handle, h(other))); }
  floorDivide(other: Operand): Tensor { return wrap(native().floorDivide(this.#handle, h(other))); }
  pow(exponent: Operand): Tensor { return wrap(native().pow(this.#handle, h(exponent))); }
  remainder(other: Operand): Tensor { return wrap(native().remainder(this.#handle, h(other))); }
  maximum(other: Operand): Tensor { return wrap(native().maximum(this.#handle, h(other))); }
  minimum(other: Operand): Tensor { return wrap(native().minimum(this.#handle, h(other))); }
  eq(other: Operand): Tensor { return wrap(native().eq(this.#handle, h(other))); }
  ne(other: Operand): Tensor { return wrap(native().ne(this.#handle, h(other))); }
  lt(other: Operand): Tensor { return wrap(native().lt(this.#handle, h(other))); }
  le(other: Operand): Tensor { return wrap(native().le(this.#handle, h(other))); }
  gt(other: Operand): Tensor { return wrap(native().gt(this.#handle, h(other))); }
  ge(other: Operand): Tensor { return wrap(native().ge(this.#handle, h(other))); }
  logicalAnd(other: Operand): Tensor { return wrap(native().logicalAnd(this.#handle, h(other))); }
  logicalOr(other: Operand): Tensor { return wrap(native().logicalOr(this.#handle, h(other))); }
  logicalNot(): Tensor { return wrap(native().logicalNot(this.#handle)); }
  neg(): Tensor { return wrap(native().neg(this.#handle)); }
  abs(): Tensor { return wrap(native().abs(this.#handle)); }
  exp(): Tensor { return wrap(native().exp(this.#handle)); }
  log(): Tensor { return wrap(native().log(this.#handle)); }
  log1p(): Tensor { return wrap(native().log1p(this.#handle)); }
  sqrt(): Tensor { return wrap(native().sqrt(this.#handle)); }
  rsqrt(): Tensor { return wrap(native().rsqrt(this.#handle)); }
  square(): Tensor { return wrap(native().square(this.#handle)); }
  reciprocal(): Tensor { return wrap(native().reciprocal(this.#handle)); }
  sign(): Tensor { return wrap(native().sign(this.#handle)); }
  sin(): Tensor { return wrap(native().sin(this.#handle)); }
  cos(): Tensor { return wrap(native().cos(this.#handle)); }
  tanh(): Tensor { return wrap(native().tanh(this.#handle)); }
  sigmoid(): Tensor { return wrap(native().sigmoid(this.#handle)); }
  relu(): Tensor { return wrap(native().relu(this.#handle)); }
  silu(): Tensor { return wrap(native().silu(this.#handle)); }
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor { return wrap(native().gelu(this.#handle, approximate)); }
  erf(): Tensor { return wrap(native().erf(this.#handle)); }
  floor(): Tensor { return wrap(native().floor(this.#handle)); }
  ceil(): Tensor { return wrap(native().ceil(this.#handle)); }
  round(): Tensor { return wrap(native().round(this.#handle)); }
  isnan(): Tensor { return wrap(native().isnan(this.#handle)); }
  isfinite(): Tensor { return wrap(native().isfinite(this.#handle)); }
  clamp(min: number | null, max: number | null = null): Tensor { return wrap(native().clamp(this.#handle, min, max)); }

  // ---- in place (return this) -----------------------------------------------------------------
  add_(other: Operand): this { native().addInPlace(this.#handle, h(other)); return this; }
  sub_(other: Operand): this { native().subInPlace(this.#handle, h(other)); return this; }
  mul_(other: Operand): this { native().mulInPlace(this.#handle, h(other)); return this; }
  div_(other: Operand): this { native().divInPlace(this.#handle, h(other)); return this; }
  copy_(src: Tensor): this { native().copyInPlace(this.#handle, src.handle); return this; }
  fill_(value: Scalar | Tensor): this { native().fillInPlace(this.#handle, h(value)); return this; }
  zero_(): this { native().zeroInPlace(this.#handle); return this; }

  // ---- linear algebra -------------------------------------------------------------------------
  matmul(other: Tensor): Tensor { return wrap(native().matmul(this.#handle, other.handle)); }
  /** matmul on the compute queue, off the main thread. */
  async matmulAsync(other: Tensor): Promise<Tensor> { return wrap(await native().matmulAsync(this.#handle, other.handle)); }
  dot(other: Tensor): Tensor { return wrap(native().dot(this.#handle, other.handle)); }

  // ---- reductions -----------------------------------------------------------------------------
  sum(dims?: number | Shape, opts: { keepdim?: boolean; dtype?: DType } = {}): Tensor {
    return wrap(native().sum(this.#handle, dimsArg(dims), opts.keepdim ?? false, opts.dtype ?? null));
  }
  mean(dims?: number | Shape, opts: { keepdim?: boolean; dtype?: DType } = {}): Tensor {
    return wrap(native().mean(this.#handle, dimsArg(dims), opts.keepdim ?? false, opts.dtype ?? null));
  }
  prod(dim?: number, keepdim = false): Tensor { return wrap(native().prod(this.#handle, dim ?? null, keepdim)); }
  /** Largest value overall, or along `dims` (PyTorch's amax). */
  max(dims?: number | Shape, keepdim = false): Tensor { return wrap(native().amax(this.#handle, dimsArg(dims), keepdim)); }
  min(dims?: number | Shape, keepdim = false): Tensor { return wrap(native().amin(this.#handle, dimsArg(dims), keepdim)); }
  /** Values and indices of the maxima along `dim`. */
  maxWithIndices(dim: number, keepdim = false): [Tensor, Tensor] { return wrapPair(native().maxDim(this.#handle, dim, keepdim)); }
  minWithIndices(dim: number, keepdim = false): [Tensor, Tensor] { return wrapPair(native().minDim(this.#handle, dim, keepdim)); }
  argmax(dim?: number, keepdim = false): Tensor { return wrap(native().argmax(this.#handle, dim ?? null, keepdim)); }
  argmin(dim?: number, keepdim = false): Tensor { return wrap(native().argmin(this.#handle, dim ?? null, keepdim)); }
  std(dims?: number | Shape, opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return wrap(native().std(this.#handle, dimsArg(dims), opts.correction ?? 1, opts.keepdim ?? false));
  }
  var(dims?: number | Shape, opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return wrap(native().var(this.#handle, dimsArg(dims), opts.correction ?? 1, opts.keepdim ?? false));
  }
  norm(p = 2, dims?: number | Shape, keepdim = false): Tensor { return wrap(native().norm(this.#handle, p, dimsArg(dims), keepdim)); }
  logsumexp(dims: number | Shape, keepdim = false): Tensor { return wrap(native().logsumexp(this.#handle, dims, keepdim)); }
  all(dim?: number, keepdim = false): Tensor { return wrap(native().all(this.#handle, dim ?? null, keepdim)); }
  any(dim?: number, keepdim = false): Tensor { return wrap(native().any(this.#handle, dim ?? null, keepdim)); }
  cumsum(dim: number): Tensor { return wrap(native().cumsum(this.#handle, dim)); }
  topk(k: number, dim = -1, largest = true): [Tensor, Tensor] { return wrapPair(native().topk(this.#handle, k, dim, largest, true)); }
  sort(dim = -1, descending = false): [Tensor, Tensor] { return wrapPair(native().sort(this.#handle, dim, descending, true)); }
  argsort(dim = -1, descending = false): Tensor { return wrap(native().argsort(this.#handle, dim, descending, true)); }
  softmax(dim: number): Tensor { return wrap(native().softmax(this.#handle, dim)); }
  logSoftmax(dim: number): Tensor { return wrap(native().logSoftmax(this.#handle, dim)); }

  // ---- shape ----------------------------------------------------------------------------------
  reshape(...shape: number[]): Tensor { return wrap(native().reshape(this.#handle, shape)); }
  view(...shape: number[]): Tensor { return wrap(native().view(this.#handle, shape)); }
  permute(...dims: number[]): Tensor { return wrap(native().permute(this.#handle, dims)); }
  transpose(dim0: number, dim1: number): Tensor { return wrap(native().transpose(this.#handle, dim0, dim1)); }
  /** Transpose of a 2-d tensor. */
  get T(): Tensor { return this.transpose(0, 1); }
  flatten(startDim = 0, endDim = -1): Tensor { return wrap(native().flatten(this.#handle, startDim, endDim)); }
  unsqueeze(dim: number): Tensor { return wrap(native().unsqueeze(this.#handle, dim)); }
  squeeze(dim?: number): Tensor { return wrap(native().squeeze(this.#handle, dim ?? null)); }
  expand(...shape: number[]): Tensor { return wrap(native().expand(this.#handle, shape)); }
  repeat(...reps: number[]): Tensor { return wrap(native().repeat(this.#handle, reps)); }
  narrow(dim: number, start: number, length: number): Tensor { return wrap(native().narrow(this.#handle, dim, start, length)); }
  select(dim: number, index: number): Tensor { return wrap(native().select(this.#handle, dim, index)); }
  slice(dim: number, start: number | null = null, end: number | null = null, step = 1): Tensor {
    return wrap(native().slice(this.#handle, dim, start, end, step));
  }
  /** Python-style indexing: t.index(0, slice(1, 3), null, '...', maskTensor). */
  index(...specs: IndexSpec<Tensor>[]): Tensor {
    return wrap(native().index(this.#handle, specs.map((s) => encodeIndex(s, (t) => t.handle))));
  }
  /** In place, like `t[specs] = value`. */
  indexPut_(specs: IndexSpec<Tensor>[], value: Operand): this {
    native().indexPut(this.#handle, specs.map((s) => encodeIndex(s, (t) => t.handle)), h(value));
    return this;
  }
  indexSelect(dim: number, index: Tensor): Tensor { return wrap(native().indexSelect(this.#handle, dim, index.handle)); }
  gather(dim: number, index: Tensor): Tensor { return wrap(native().gather(this.#handle, dim, index.handle)); }
  maskedFill(mask: Tensor, value: Scalar): Tensor { return wrap(native().maskedFill(this.#handle, mask.handle, value)); }
  split(sizes: number | Shape, dim = 0): Tensor[] { return native().split(this.#handle, sizes, dim).map(wrap); }
  chunk(chunks: number, dim = 0): Tensor[] { return native().chunk(this.#handle, chunks, dim).map(wrap); }
  unbind(dim = 0): Tensor[] { return native().unbind(this.#handle, dim).map(wrap); }
  flip(...dims: number[]): Tensor { return wrap(native().flip(this.#handle, dims)); }
  /** A view with explicit sizes and strides on this tensor's storage (bounds-checked). */
  asStrided(size: Shape, stride: Shape, storageOffset?: number): Tensor {
    return wrap(native().asStrided(this.#handle, size, stride, storageOffset ?? null));
  }
  /** Reinterprets the bytes as another dtype (PyTorch's view(dtype)). */
  viewAs(dtype: DType): Tensor { return wrap(native().viewAsDtype(this.#handle, dtype)); }
  tril(k = 0): Tensor { return wrap(native().tril(this.#handle, k)); }
  triu(k = 0): Tensor { return wrap(native().triu(this.#handle, k)); }

  // ---- autograd -------------------------------------------------------------------------------
  get requiresGrad(): boolean {
    return native().flags(this.#handle).requiresGrad;
  }
  set requiresGrad(flag: boolean) {
    native().setRequiresGrad(this.#handle, flag);
  }
  /** Sets requires_grad in place and returns this (like PyTorch's requires_grad_()). */
  requiresGrad_(flag = true): this {
    native().setRequiresGrad(this.#handle, flag);
    return this;
  }
  /** The accumulated gradient, or null. Each read returns a new Tensor handle on the same memory. */
  get grad(): Tensor | null {
    const g = native().grad(this.#handle);
    return g ? wrap(g) : null;
  }
  set grad(value: Tensor | null) {
    native().setGrad(this.#handle, value ? value.handle : null);
  }
  backward(gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    native().backward(this.#handle, gradient?.handle ?? null, opts.retainGraph ?? false);
  }
  retainGrad(): void {
    native().retainGrad(this.#handle);
  }
  detach(): Tensor {
    return wrap(native().detach(this.#handle));
  }
}

/** @internal */
export function wrap(handle: TensorHandle): Tensor {
  return new Tensor(handle);
}

function wrapPair([a, b]: [TensorHandle, TensorHandle]): [Tensor, Tensor] {
  return [wrap(a), wrap(b)];
}

export type { Reduction };
