// `medtune merge --model DIR --adapter DIR --out DIR`: a full checkpoint with the trained result
// folded in (LoRA / DoRA merged into their weights, modules_to_save and trained tensors copied),
// written as a Hugging Face directory transformers loads, with the base model's tokenizer and
// processor files. The directory is built under a temporary name and renamed into place.
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { findCheckpointFiles } from '../../models/checkpoint.ts';
import { loadModel } from '../../models/load.ts';
import type { DType } from '../../torch/dtype.ts';
import { loadAdapter, mergeAdapters } from '../../peft/index.ts';
import { type Command, UsageError } from '../command.ts';

const USAGE = `medtune merge --model DIR --adapter DIR --out DIR [--dtype fp32|bf16|fp16] [--overwrite]

  --model DIR     the base model (Hugging Face directory)
  --adapter DIR   a PEFT adapter (adapter_config.json + adapter_model.safetensors, from medtune or peft)
                  or a medtune output of another method (trainable.safetensors)
  --out DIR       where the merged checkpoint goes (must not exist unless --overwrite)
  --dtype D       dtype of the written weights (default: the base model's)
  --max-shard S   largest shard, e.g. 5GB (default 5GB)`;

// Files of a model directory that are neither weights nor config.json: copied as they are.
function isWeightFile(name: string): boolean {
  return /\.safetensors$/.test(name) || name === 'model.safetensors.index.json' || /\.(bin|pth|pt|ckpt)$/.test(name) || name === 'config.json';
}

export const mergeCommand: Command = {
  name: 'merge',
  summary: 'fold a trained adapter (or trained tensors) into its base model and write a full checkpoint',
  usage: USAGE,
  async run(argv) {
    const { values: v } = parseArgs({
      args: argv,
      options: { model: { type: 'string' }, adapter: { type: 'string' }, out: { type: 'string' }, dtype: { type: 'string' }, 'max-shard': { type: 'string' }, overwrite: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    });
    if (!v.model) throw new UsageError('--model DIR is required');
    if (!v.adapter) throw new UsageError('--adapter DIR is required');
    if (!v.out) throw new UsageError('--out DIR is required');
    const dtypes = { fp32: 'float32', bf16: 'bfloat16', fp16: 'float16' } as const;
    if (v.dtype !== undefined && !(v.dtype in dtypes)) throw new UsageError(`--dtype must be fp32, bf16 or fp16, got '${v.dtype}'`);
    const out = resolve(v.out);
    if (existsSync(out) && !v.overwrite && readdirSync(out).length > 0) throw new UsageError(`${out} exists and is not empty (--overwrite replaces it)`);
    // Merged in float32; written in the base checkpoint's dtype unless --dtype says otherwise.
    const stored = findCheckpointFiles(v.model).headers.flatMap((h) => h.tensors).find((t) => ['float32', 'bfloat16', 'float16'].includes(t.dtype))?.dtype as DType | undefined;
    const dtype: DType | undefined = v.dtype ? dtypes[v.dtype as keyof typeof dtypes] : stored;
    const model = await loadModel(v.model);
    try {
      const applied = await loadAdapter(model, v.adapter);
      mergeAdapters(model, applied);
      mkdirSync(dirname(out), { recursive: true });
      const tmp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}`);
      rmSync(tmp, { recursive: true, force: true });
      try {
        const saved = await model.save(tmp, { ...(dtype ? { dtype } : {}), ...(v['max-shard'] ? { maxShardSize: v['max-shard'] } : {}) });
        for (const name of readdirSync(v.model)) {
          const src = join(v.model, name);
          if (!isWeightFile(name) && statSync(src).isFile() && !existsSync(join(tmp, name))) copyFileSync(src, join(tmp, name));
        }
        const old = existsSync(out) ? `${tmp}.old` : null;
        if (old) renameSync(out, old);
        renameSync(tmp, out);
        if (old) rmSync(old, { recursive: true, force: true });
        const what = applied.adapters.length ? `${applied.adapters.length} adapter${applied.adapters.length > 1 ? 's' : ''} merged` : `${applied.trainable.length} trained tensors`;
        console.log(`${what}${applied.modulesToSave.length ? `, ${applied.modulesToSave.join(', ')} replaced` : ''}; wrote ${saved.files.length} weight file(s) to ${out}`);
      } catch (err) {
        rmSync(tmp, { recursive: true, force: true });
        throw err;
      }
    } finally {
      model.dispose();
    }
    return 0;
  },
};
