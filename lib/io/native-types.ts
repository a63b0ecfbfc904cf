// The native safetensors reader/writer (csrc/io/safetensors*.cpp) as TypeScript sees it.
import type { DType } from '../torch/dtype.ts';
import type { ObjectHandle, TensorHandle } from '../torch/native-types.ts';

export type SafetensorsHandle = ObjectHandle<'SafetensorsFile'>;

export interface NativeTensorRecord {
  name: string;
  /** medtune's spelling ('bfloat16'); dtypes medtune has no name for keep libtorch's. */
  dtype: DType | string;
  /** The file's spelling ('BF16'). */
  fileDtype: string;
  shape: number[];
  offsets: [number, number];
}

export interface SafetensorsAddon {
  safetensorsOpen(path: string): SafetensorsHandle;
  safetensorsInfo(file: SafetensorsHandle): { path: string; fileSize: number; metadata: Record<string, string>; tensors: NativeTensorRecord[] };
  safetensorsRead(file: SafetensorsHandle, name: string, dtype?: DType | null, device?: string | null): TensorHandle;
  safetensorsLoadAsync(path: string, dtype?: DType | null, device?: string | null, names?: string[] | null):
    Promise<{ metadata: Record<string, string>; names: string[]; tensors: TensorHandle[] }>;
  safetensorsSaveAsync(path: string, names: string[], tensors: TensorHandle[], metadata?: Record<string, string> | null): Promise<void>;
  disposeHandle(h: ObjectHandle<string>): void;
}
