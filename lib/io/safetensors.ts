// safetensors from TypeScript. Files are memory-mapped and their headers validated natively; a
// corrupt file is an Error (code MEDTUNE_BAD_CHECKPOINT) that names the file and the tensor.
import type { Device } from '../torch/device.ts';
import type { DType } from '../torch/dtype.ts';
import { nativePart } from '../torch/native.ts';
import { Tensor } from '../torch/tensor.ts';
import type { SafetensorsAddon } from './native-types.ts';

const addon = (): SafetensorsAddon => nativePart<SafetensorsAddon>();

export interface SafetensorsTensorInfo {
  name: string;
  /** medtune's dtype name ('bfloat16'); types medtune cannot name keep libtorch's spelling. */
  dtype: DType | string;
  /** The dtype as the file spells it ('BF16'). */
  fileDtype: string;
  shape: number[];
  /** Byte range inside the data area. */
  offsets: [number, number];
}

export interface SafetensorsHeader {
  path: string;
  fileSize: number;
  metadata: Record<string, string>;
  /** In the order of their data in the file. */
  tensors: SafetensorsTensorInfo[];
}

/** Reads and validates a file's header without loading any tensor. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const n = addon();
  const handle = n.safetensorsOpen(path);
  try {
    return n.safetensorsInfo(handle) as SafetensorsHeader;
  } finally {
    n.disposeHandle(handle);
  }
}

export interface LoadSafetensorsOptions {
  /** Convert every tensor to this dtype while reading (default: as stored). */
  dtype?: DType;
  device?: Device;
  /** Only these tensors (an unknown name is an Error). */
  names?: string[];
}

/** Loads a safetensors file on the compute queue. Tensors are copies; the file is not kept open. */
export async function loadSafetensors(path: string, opts: LoadSafetensorsOptions = {}): Promise<{ tensors: Record<string, Tensor>; metadata: Record<string, string> }> {
  const out = await addon().safetensorsLoadAsync(path, opts.dtype ?? null, opts.device ?? null, opts.names ?? null);
  const tensors: Record<string, Tensor> = {};
  out.names.forEach((name, i) => {
    tensors[name] = Tensor.fromHandle(out.tensors[i]!);
  });
  return { tensors, metadata: out.metadata };
}

/**
 * Writes tensors (any device and dtype safetensors knows) with string metadata. The write is
 * atomic: a temporary file next to `path`, fsync, rename.
 */
export async function saveSafetensors(
  path: string,
  tensors: Record<string, Tensor> | Map<string, Tensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  await addon().safetensorsSaveAsync(path, entries.map(([k]) => k), entries.map(([, t]) => t.handle), metadata);
}
