import { native } from './native.ts';

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
  /** Name and memory of each visible device (empty on a CPU build). */
  devices(): { index: number; name: string; totalMemory: number; capability: string }[] {
    return native().cudaDevices();
  },
};
