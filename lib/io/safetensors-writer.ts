// Writes the safetensors format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__},
// padded with spaces to a multiple of 8, then the row-major little-endian tensor bytes.
// Tensors are laid out like the reference implementation (larger element sizes first, then by
// name) so every tensor starts aligned to its element size. The write is atomic: a temporary
// file in the target directory, fsync, then rename.
//
// This is a TypeScript writer for `medtune convert`. Its signature is the one of the native
// writer being built in csrc/io (lib/models/safetensors.ts on the models branch), so callers can
// switch to that one by changing the import.
import type { DType } from '../torch/dtype.ts';
import { dtypeSize } from '../torch/dtype.ts';
import { tidy } from '../torch/scope.ts';
import type { Tensor } from '../torch/tensor.ts';
import { writeAll, writeFileAtomic } from './atomic-write.ts';

export const SAFETENSORS_DTYPE: Record<DType, string> = {
  float32: 'F32', float16: 'F16', bfloat16: 'BF16', float64: 'F64', int64: 'I64', int32: 'I32', int16: 'I16', int8: 'I8',
  uint8: 'U8', bool: 'BOOL',
};

/** The raw little-endian bytes of a tensor in row-major order (a copy). */
function tensorBytes(t: Tensor): Uint8Array {
  return tidy(() => {
    const flat = t.to('cpu').contiguous().reshape(t.numel);
    const bytes = flat.dtype === 'uint8' ? flat : flat.viewAs('uint8');
    return bytes.toTypedArray() as Uint8Array;
  });
}

/** Builds the header for `entries` in the order given. */
function header(entries: [string, Tensor][], metadata: Record<string, string>): Buffer {
  const head: Record<string, unknown> = {};
  if (Object.keys(metadata).length) head['__metadata__'] = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const n = t.numel * dtypeSize(t.dtype);
    head[name] = { dtype: SAFETENSORS_DTYPE[t.dtype], shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  const json = Buffer.from(JSON.stringify(head), 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.length / 8) * 8, 0x20);
  json.copy(padded);
  const out = Buffer.alloc(8 + padded.length);
  out.writeBigUInt64LE(BigInt(padded.length), 0);
  padded.copy(out, 8);
  return out;
}

/** Writes `tensors` to `file` as safetensors with string `metadata` (e.g. {format: 'pt'}), atomically. */
export async function saveSafetensors(file: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata: Record<string, string> = {}): Promise<void> {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  for (const [name, t] of entries) {
    if (!name || name === '__metadata__') throw new TypeError(`saveSafetensors: invalid tensor name ${JSON.stringify(name)}`);
    if (!(t.dtype in SAFETENSORS_DTYPE)) throw new TypeError(`saveSafetensors: tensor ${name} has dtype ${t.dtype}, which safetensors cannot store`);
  }
  for (const [k, v] of Object.entries(metadata))
    if (typeof v !== 'string') throw new TypeError(`saveSafetensors: metadata ${k} must be a string`);
  entries.sort(([a, ta], [b, tb]) => dtypeSize(tb.dtype) - dtypeSize(ta.dtype) || (a < b ? -1 : a > b ? 1 : 0));

  await writeFileAtomic(file, async (fh) => {
    await writeAll(fh, header(entries, metadata));
    for (const [, t] of entries) await writeAll(fh, tensorBytes(t));
  });
}
