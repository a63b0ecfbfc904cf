import { native } from './native.ts';
import { cudaStatus, emptyCache, memoryStats, memoryStatsAll, resetPeakMemoryStats } from './cuda-memory.ts';
import type { CudaDeviceInfo } from './native-types.ts';

/** A device as PyTorch spells it. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

const DEVICE_PATTERN = /^(cpu|cuda)(:\d+)?$/;

export function isDevice(value: unknown): value is Device {
  return typeof value === 'string' && DEVICE_PATTERN.test(value) && !value.startsWith('cpu:');
}

/** CUDA queries. They never throw on a CPU build: they report that there is no CUDA. */
export const cuda = {
  isAvailable(): boolean {
    return native().runtimeInfo().cudaAvailable;
  },
  deviceCount(): number {
    return native().runtimeInfo().cudaDeviceCount;
  },
  /** Name, memory and compute capability of each visible device (empty on a CPU build). */
  devices(): CudaDeviceInfo[] {
    return native().cudaDevices();
  },
  status: cudaStatus,
  memoryStats,
  memoryStatsAll,
  resetPeakMemoryStats,
  emptyCache,
};
