// medtune's tensor layer: typed tensors over libtorch with deterministic memory management.
export type { DType, FloatDType, TypedArrayOf, AnyTypedArray } from './dtype.ts';
export { DTYPES, isDType, isFloatingDType, dtypeSize } from './dtype.ts';
export { type Device, isDevice, cuda } from './device.ts';
export { Tensor, type Operand, type Shape, type NestedArray } from './tensor.ts';
export { slice, type Slice, type IndexSpec } from './indexing.ts';
export {
  tensor, zeros, ones, empty, full, arange, linspace, eye, rand, randn, randint, randperm,
  zerosLike, onesLike, fullLike, scalarTensor, Generator, type TensorOptions, type RandomOptions,
} from './creation.ts';
export { cat, stack, where, matmul, add, sub, mul, div, allclose, equal, F } from './functional.ts';
export { noGrad, enableGrad, isGradEnabled, grad } from './autograd.ts';
export { tidy, keep } from './scope.ts';
export { liveTensors, manualSeed, setNumThreads, getNumThreads, buildInfo, runtimeInfo, synchronize, environment, type Environment } from './runtime.ts';
export { native, nativePart, PACKAGE_ROOT } from './native.ts';
export type { Scalar, Reduction, TensorHandle, ObjectHandle, BuildInfo, RuntimeInfo, CudaDeviceInfo, CudaStatus, CudaMemoryStats, CudaMemoryUnavailable } from './native-types.ts';
