// Checkpoint-load case: load time and peak host memory of a synthetic sharded LLaMA checkpoint
// (random weights, written once by createModel + save), loaded by medtune and by PyTorch
// (transformers from_pretrained, plain safetensors.load_file). Every load runs in a fresh process
// (scripts/bench/load-child.ts, scripts/python/bench_load.py) that times only the load itself;
// peak memory is VmHWM over the load (reset via /proc/self/clear_refs) minus the resident size
// before it. The sides take turns within each run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createModel } from '../../../lib/models/index.ts';
import { PACKAGE_ROOT } from '../../../lib/torch/index.ts';
import { ensurePythonEnv } from '../../setup/python-env.mjs';
import { median, row, type CaseResult } from './common.ts';

export interface LoadMeasure { loadMs: number; peakOverBaselineBytes: number; baselineBytes: number; params: number }

/** TinyLlama-1.1B: 22 layers, hidden 2048, GQA 32/4 heads, SwiGLU 5632, vocab 32000. */
export const TINYLLAMA_SHAPE = {
  model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632,
  num_hidden_layers: 22, num_attention_heads: 32, num_key_value_heads: 4, max_position_embeddings: 2048, rms_norm_eps: 1e-5,
  rope_theta: 10000, tie_word_embeddings: false,
};

/** Writes the synthetic checkpoint once (bf16 weights, shards of `maxShardSize`). */
export async function ensureCheckpoint(dir: string, config: Record<string, unknown>, maxShardSize = '1GB', log: (s: string) => void = console.log): Promise<void> {
  if (existsSync(join(dir, 'model.safetensors.index.json')) || existsSync(join(dir, 'model.safetensors'))) return;
  log(`writing the synthetic checkpoint to ${dir} (once)`);
  const model = await createModel(config, { dtype: 'bf16', seed: 0 });
  try {
    const saved = await model.save(dir, { maxShardSize });
    log(`  ${model.parameterCount().total / 1e9} B parameters, ${saved.files.length} shard(s), ${(saved.totalBytes / 2 ** 30).toFixed(2)} GiB`);
  } finally {
    model.dispose();
  }
}

function run(command: string, args: string[]): LoadMeasure {
  const r = spawnSync(command, args, { cwd: PACKAGE_ROOT, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, env: { ...process.env, CUDA_VISIBLE_DEVICES: '' } });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as LoadMeasure;
}

/** The sides a load can be measured with, by name. "load" alone favours lazy mmap loaders; "+ touch" reads every weight once. */
export function loadSides(dir: string, dtype: string): Record<string, () => LoadMeasure> {
  const python = ensurePythonEnv({ quiet: true });
  const node = (...flags: string[]) => () => run(process.execPath, ['--import', 'tsx', join(PACKAGE_ROOT, 'scripts/bench/load-child.ts'), dir, dtype, ...flags]);
  const py = (...args: string[]) => () => run(python, [join(PACKAGE_ROOT, 'scripts/python/bench_load.py'), dir, dtype, ...args]);
  return {
    'medtune (copy)': node(),
    'medtune (mmap)': node('--mmap'),
    'transformers from_pretrained': py('transformers'),
    'safetensors load_file': py('safetensors'),
    'medtune (copy) + touch': node('--touch'),
    'medtune (mmap) + touch': node('--mmap', '--touch'),
    'transformers + touch': py('transformers', 'touch'),
    'safetensors + touch': py('safetensors', 'touch'),
  };
}

/** Measures the named sides `runs` times each, taking turns; every measure of every side. */
export function measureLoads(dir: string, dtype: string, runs: number, names?: string[]): Record<string, LoadMeasure[]> {
  const all = loadSides(dir, dtype);
  const sides = names ? Object.fromEntries(names.map((n) => [n, all[n]!])) : all;
  const results: Record<string, LoadMeasure[]> = {};
  for (let i = 0; i < runs; i++) for (const [name, fn] of Object.entries(sides)) (results[name] ??= []).push(fn());
  return results;
}

/** The suite's rows: medtune's load against transformers', and mmap + touch against safetensors + touch. */
export function loadCheckpointCase(label: string, dir: string, dtype: string, runs: number): CaseResult[] {
  const pairs: [string, string, string][] = [
    ['from_pretrained', 'medtune (copy)', 'transformers from_pretrained'],
    ['every weight read', 'medtune (mmap) + touch', 'safetensors + touch'],
  ];
  const m = measureLoads(dir, dtype, runs, pairs.flatMap(([, a, b]) => [a, b]));
  const peak = (xs: LoadMeasure[]) => Math.max(...xs.map((x) => x.peakOverBaselineBytes));
  return pairs.map(([what, a, b]) => row('checkpoint load', `${label}: ${what}`, 'load', m[a]!.map((x) => x.loadMs), m[b]!.map((x) => x.loadMs), {
    medtune_side: a, pytorch_side: b, params: m[a]![0]!.params,
    medtune_peak_rss_over_baseline_gib: peak(m[a]!) / 2 ** 30, pytorch_peak_rss_over_baseline_gib: peak(m[b]!) / 2 ** 30,
    medtune_median_ms: median(m[a]!.map((x) => x.loadMs)),
  }));
}
