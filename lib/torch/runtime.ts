// Process-wide settings and facts: live tensors, seeds, threads, what was built and found.
import { addonLocation, native, readLibtorchChoice, type AddonLocation, type LibtorchChoice } from './native.ts';
import type { BuildInfo, RuntimeInfo } from './native-types.ts';

/** Native tensors currently held by JavaScript (tests use it to prove nothing leaks). */
export function liveTensors(): number {
  return native().liveTensors();
}

/** Seeds the global CPU and CUDA generators (torch.manual_seed). */
export function manualSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new TypeError(`manualSeed(): seed must be a non-negative integer, got ${seed}`);
  native().manualSeed(seed);
}

/** Intra-op threads for libtorch, applied to the main thread and the compute worker. */
export function setNumThreads(n: number): void {
  native().setNumThreads(n);
}

export function getNumThreads(): number {
  return native().getNumThreads();
}

export function buildInfo(): BuildInfo {
  return native().buildInfo();
}

export function runtimeInfo(): RuntimeInfo {
  return native().runtimeInfo();
}

/** Resolves when every native job queued before it has finished. */
export function synchronize(): Promise<void> {
  return native().barrierAsync();
}

export interface Environment {
  build: BuildInfo;
  runtime: RuntimeInfo;
  libtorch: LibtorchChoice | null;
  addon: AddonLocation | null;
}

export function environment(): Environment {
  const build = buildInfo();
  const addon = addonLocation();
  return { build, runtime: runtimeInfo(), libtorch: addon?.libtorch ?? readLibtorchChoice(), addon };
}
