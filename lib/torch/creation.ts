// Creating tensors: from JavaScript data (always copied) and from shapes, ranges and random
// draws. Options mirror PyTorch's keyword arguments.
import type { AnyTypedArray, DType } from './dtype.ts';
import type { Device } from './device.ts';
import { native } from './native.ts';
import type { ObjectHandle, Scalar } from './native-types.ts';
import { type NestedArray, type Shape, Tensor, wrap } from './tensor.ts';

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

/** A random number generator with its own seed, for reproducible draws independent of the global one. */
export class Generator {
  readonly #handle: ObjectHandle<'Generator'>;
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new TypeError(`Generator: seed must be a non-negative integer, got ${seed}`);
    this.#handle = native().generatorNew(seed);
  }
  /** @internal */
  get handle(): ObjectHandle<'Generator'> {
    return this.#handle;
  }
  manualSeed(seed: number): this {
    native().generatorManualSeed(this.#handle, seed);
    return this;
  }
  get initialSeed(): number {
    return native().generatorInitialSeed(this.#handle);
  }
}

export interface RandomOptions extends TensorOptions {
  generator?: Generator;
}

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

function typedArrayDType(data: AnyTypedArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Uint16Array) return 'bfloat16';
  return 'uint8';
}

/** Shape and flat values of a rectangular nested array; ragged input is a TypeError naming the place. */
function flattenNested(data: NestedArray): { shape: number[]; values: (number | boolean)[] } {
  const shape: number[] = [];
  let probe: NestedArray = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    if (probe.length === 0) break;
    probe = probe[0] as NestedArray;
  }
  const values: (number | boolean)[] = [];
  const visit = (node: NestedArray, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (Array.isArray(node)) throw new TypeError(`tensor(): ragged nested array at ${path}: expected a number, got an array`);
      if (typeof node !== 'number' && typeof node !== 'boolean') throw new TypeError(`tensor(): element at ${path} is ${typeof node}, expected a number or boolean`);
      values.push(node);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) {
      throw new TypeError(`tensor(): ragged nested array at ${path}: expected ${shape[depth]} elements, got ${Array.isArray(node) ? node.length : 'a scalar'}`);
    }
    node.forEach((child, i) => visit(child, depth + 1, `${path}[${i}]`));
  };
  visit(data, 0, 'data');
  return { shape, values };
}

/**
 * A tensor from JavaScript data: nested arrays (dtype inferred as PyTorch does: bool, int64 for
 * integers, float32 otherwise), a scalar, or a typed array (1-d unless `shape` is given; a
 * Uint16Array holds raw bfloat16, or float16 bits with dtype 'float16').
 */
export function tensor(data: NestedArray | AnyTypedArray, opts: TensorOptions & { shape?: Shape } = {}): Tensor {
  const n = native();
  let t: Tensor;
  if (ArrayBuffer.isView(data)) {
    const typed = data as AnyTypedArray;
    const shape = opts.shape ?? [typed.length];
    const source = typedArrayDType(typed);
    const raw16 = typed instanceof Uint16Array ? (opts.dtype === 'float16' ? 'float16' : 'bfloat16') : null;
    t = wrap(n.fromTypedArray(typed, shape, raw16 ?? opts.dtype ?? source));
  } else {
    const { shape, values } = flattenNested(data);
    const allBool = values.length > 0 && values.every((v) => typeof v === 'boolean');
    const allInt = values.every((v) => typeof v === 'number' && Number.isInteger(v));
    // JavaScript cannot tell 2 from 2.0: data that asks for gradients is floating point.
    const inferred: DType = allBool ? 'bool' : allInt && values.length > 0 && !opts.requiresGrad ? 'int64' : 'float32';
    const dtype = opts.dtype ?? inferred;
    const asNumbers = values.map(Number);
    const buffer = inferred === 'int64' && (dtype === 'int64' || !opts.dtype)
      ? BigInt64Array.from(asNumbers, (v) => BigInt(v))
      : Float64Array.from(asNumbers);
    t = wrap(n.fromTypedArray(buffer, opts.shape ?? shape, dtype));
  }
  if (opts.device && opts.device !== 'cpu') {
    const moved = t.to(opts.device);
    t.dispose();
    t = moved;
  }
  return finish(t, opts);
}

export function zeros(shape: Shape, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native().zeros(shape, opts.dtype, opts.device)), opts);
}
export function ones(shape: Shape, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native().ones(shape, opts.dtype, opts.device)), opts);
}
export function empty(shape: Shape, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native().empty(shape, opts.dtype, opts.device)), opts);
}
/** Filled with `value`; the dtype defaults from the value (bool, int64, float32) as in PyTorch. */
export function full(shape: Shape, value: Scalar, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native().full(shape, value, opts.dtype, opts.device)), opts);
}
/** arange(end) or arange(start, end, step); integer arguments give int64. */
export function arange(startOrEnd: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, startOrEnd] : [startOrEnd, end];
  return finish(wrap(native().arange(s, e, step, opts.dtype, opts.device)), opts);
}
export function linspace(start: number, end: number, steps: number, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native().linspace(start, end, steps, opts.dtype, opts.device)), opts);
}
export function eye(n: number, m?: number, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native().eye(n, m ?? null, opts.dtype, opts.device)), opts);
}
/** Uniform on [0, 1). */
export function rand(shape: Shape, opts: RandomOptions = {}): Tensor {
  return finish(wrap(native().rand(shape, opts.dtype, opts.device, opts.generator?.handle ?? null)), opts);
}
/** Standard normal. */
export function randn(shape: Shape, opts: RandomOptions = {}): Tensor {
  return finish(wrap(native().randn(shape, opts.dtype, opts.device, opts.generator?.handle ?? null)), opts);
}
/** Integers in [low, high). */
export function randint(low: number, high: number, shape: Shape, opts: RandomOptions = {}): Tensor {
  return finish(wrap(native().randint(low, high, shape, opts.dtype, opts.device, opts.generator?.handle ?? null)), opts);
}
export function randperm(n: number, opts: RandomOptions = {}): Tensor {
  return finish(wrap(native().randperm(n, opts.dtype, opts.device, opts.generator?.handle ?? null)), opts);
}
export function zerosLike(t: Tensor, opts: { dtype?: DType } = {}): Tensor {
  return wrap(native().zerosLike(t.handle, opts.dtype));
}
export function onesLike(t: Tensor, opts: { dtype?: DType } = {}): Tensor {
  return wrap(native().onesLike(t.handle, opts.dtype));
}
export function fullLike(t: Tensor, value: Scalar, opts: { dtype?: DType } = {}): Tensor {
  return wrap(native().fullLike(t.handle, value, opts.dtype));
}
export function scalarTensor(value: Scalar, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native().scalarTensor(value, opts.dtype, opts.device)), opts);
}
