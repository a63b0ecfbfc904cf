// CUDA status and caching-allocator memory, typed (PyTorch's torch.cuda.memory_allocated,
// max_memory_allocated, memory_reserved, reset_peak_memory_stats, empty_cache). They never throw
// for a missing CUDA: a CPU build or a machine without a visible device reports why instead.
import { native } from './native.ts';
import type { CudaMemoryStats, CudaMemoryUnavailable, CudaStatus } from './native-types.ts';

export type { CudaMemoryStats, CudaMemoryUnavailable, CudaStatus } from './native-types.ts';

function deviceIndex(fn: string, device: number): number {
  if (!Number.isSafeInteger(device) || device < 0) throw new TypeError(`cuda.${fn}(): device must be a non-negative integer, got ${device}`);
  return device;
}

/** Compiled in? Which runtime and driver? If no device is usable, why. */
export function cudaStatus(): CudaStatus {
  return native().cudaStatus();
}

/**
 * Allocator statistics of `device` (default 0): `{ available: true, allocated, peakAllocated,
 * reserved, ... }`, or `{ available: false, reason }` on a CPU build or without a visible device.
 * A device index past the visible devices is a TypeError.
 */
export function memoryStats(device = 0): CudaMemoryStats | CudaMemoryUnavailable {
  return native().cudaMemoryStats(deviceIndex('memoryStats', device));
}

/** Statistics for every visible device (empty on a CPU build or without devices). */
export function memoryStatsAll(): CudaMemoryStats[] {
  const count = native().cudaStatus().deviceCount;
  const out: CudaMemoryStats[] = [];
  for (let d = 0; d < count; d++) {
    const s = native().cudaMemoryStats(d);
    if (s.available) out.push(s);
  }
  return out;
}

/** Starts peak tracking anew for `device`; false when there is no CUDA device to reset. */
export function resetPeakMemoryStats(device = 0): boolean {
  return native().cudaResetPeakMemoryStats(deviceIndex('resetPeakMemoryStats', device));
}

/** Returns cached, unused blocks to the driver; false when there is no CUDA device. */
export function emptyCache(): boolean {
  return native().cudaEmptyCache();
}
