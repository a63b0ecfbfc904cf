// Benchmark: load time and peak host memory of a synthetic ~1.1B-parameter bf16 sharded checkpoint
// (TinyLlama-1.1B's shape, random weights, written by createModel + save), loaded by medtune and, in
// the same run, by PyTorch (transformers from_pretrained, and plain safetensors.load_file). Each
// load runs in a fresh process; peak memory is VmHWM over the load (reset via /proc/self/clear_refs)
// minus the resident size before it. The measuring lives in cases/load-checkpoint.ts, which
// `npm run bench` runs on a smaller checkpoint.
//
// Usage: node --import tsx scripts/bench/load-checkpoint.ts [--dir DIR] [--runs N] [--dtype bfloat16|float32] [--out FILE]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { PACKAGE_ROOT } from '../../lib/torch/index.ts';
import { ensureCheckpoint, measureLoads, TINYLLAMA_SHAPE } from './cases/load-checkpoint.ts';
import { median } from './cases/common.ts';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: join(PACKAGE_ROOT, '.cache', 'bench', 'llama-1.1b-bf16') },
    runs: { type: 'string', default: '3' },
    dtype: { type: 'string', default: 'bfloat16' },
    out: { type: 'string', default: join(PACKAGE_ROOT, 'runs', 'bench-load-checkpoint.json') },
  },
});
const dir = values.dir!;
const runs = Number(values.runs);
const dtype = values.dtype!;

await ensureCheckpoint(dir, TINYLLAMA_SHAPE);
const results = measureLoads(dir, dtype, runs);

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
writeFileSync(values.out!, `${JSON.stringify({ dir, dtype, config: TINYLLAMA_SHAPE, summary, measuredAt: new Date().toISOString() }, null, 2)}\n`);
console.log(`\nwritten to ${values.out}`);
