// Benchmark: load time and peak host memory of a synthetic ~1.1B-parameter bf16 sharded checkpoint
// (TinyLlama-1.1B's shape, random weights, written by createModel + save), loaded by medtune and, in
// the same run, by PyTorch (transformers from_pretrained, and plain safetensors.load_file). Each
// load runs in a fresh process; peak memory is VmHWM over the load (reset via /proc/self/clear_refs)
// minus the resident size before it.
//
// Usage: node --import tsx scripts/bench/load-checkpoint.ts [--dir DIR] [--runs N] [--dtype bfloat16|float32] [--out FILE]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createModel } from '../../lib/models/index.ts';
import { ensurePythonEnv } from '../setup/python-env.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: join(root, '.cache', 'bench', 'llama-1.1b-bf16') },
    runs: { type: 'string', default: '3' },
    dtype: { type: 'string', default: 'bfloat16' },
    out: { type: 'string', default: join(root, 'runs', 'bench-load-checkpoint.json') },
  },
});
const dir = values.dir!;
const runs = Number(values.runs);
const dtype = values.dtype!;

// TinyLlama-1.1B: 22 layers, hidden 2048, GQA 32/4 heads, SwiGLU 5632, vocab 32000.
const config = {
  model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632,
  num_hidden_layers: 22, num_attention_heads: 32, num_key_value_heads: 4, max_position_embeddings: 2048, rms_norm_eps: 1e-5,
  rope_theta: 10000, tie_word_embeddings: false,
};

if (!existsSync(join(dir, 'model.safetensors.index.json'))) {
  console.log(`writing the synthetic checkpoint to ${dir} (once)`);
  const model = await createModel(config, { dtype: 'bf16', seed: 0 });
  const saved = await model.save(dir, { maxShardSize: '1GB' });
  console.log(`  ${model.parameterCount().total / 1e9} B parameters, ${saved.files.length} shards, ${(saved.totalBytes / 2 ** 30).toFixed(2)} GiB`);
  model.dispose();
}

interface Measure { loadMs: number; peakOverBaselineBytes: number; baselineBytes: number; params: number }

function run(command: string, args: string[]): Measure {
  const r = spawnSync(command, args, { cwd: root, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as Measure;
}

const python = ensurePythonEnv({ quiet: true });
const node = (...flags: string[]) => () => run(process.execPath, ['--import', 'tsx', join(root, 'scripts/bench/load-child.ts'), dir, dtype, ...flags]);
const py = (...args: string[]) => () => run(python, [join(root, 'scripts/python/bench_load.py'), dir, dtype, ...args]);
// "load" alone favours lazy mmap loaders (nothing is read yet); "+ touch" reads every weight once.
const sides: Record<string, () => Measure> = {
  'medtune (copy)': node(),
  'medtune (mmap)': node('--mmap'),
  'transformers from_pretrained': py('transformers'),
  'safetensors load_file': py('safetensors'),
  'medtune (copy) + touch': node('--touch'),
  'medtune (mmap) + touch': node('--mmap', '--touch'),
  'transformers + touch': py('transformers', 'touch'),
  'safetensors + touch': py('safetensors', 'touch'),
};
const results: Record<string, Measure[]> = {};
for (let i = 0; i < runs; i++) {
  for (const [name, fn] of Object.entries(sides)) (results[name] ??= []).push(fn());
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const gib = (b: number) => (b / 2 ** 30).toFixed(2);
const summary = Object.fromEntries(Object.entries(results).map(([name, ms]) => [name, {
  medianLoadMs: median(ms.map((m) => m.loadMs)),
  maxPeakOverBaselineBytes: Math.max(...ms.map((m) => m.peakOverBaselineBytes)),
  params: ms[0]!.params,
  runs: ms,
}]));
const base = summary['medtune (copy)']!;
console.log(`\n${runs} run(s) each, fresh process per load, ${dtype} target, ${(base.params / 1e9).toFixed(3)} B parameters, page cache warm after the first run`);
console.log('side                          median time   peak RSS over baseline   time / medtune (copy)');
for (const [name, s] of Object.entries(summary)) {
  console.log(`${name.padEnd(30)}${(s.medianLoadMs / 1000).toFixed(2).padStart(8)} s   ${gib(s.maxPeakOverBaselineBytes).padStart(10)} GiB             ${(s.medianLoadMs / base.medianLoadMs).toFixed(2)}`);
}
mkdirSync(dirname(values.out!), { recursive: true });
writeFileSync(values.out!, `${JSON.stringify({ dir, dtype, config, summary, measuredAt: new Date().toISOString() }, null, 2)}\n`);
console.log(`\nwritten to ${values.out}`);
