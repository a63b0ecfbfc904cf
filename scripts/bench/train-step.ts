// Benchmark: time per optimizer step of one tuning method on one of the suite's models, medtune's
// trainer (as `medtune train --method M`) versus the same loop in PyTorch (transformers + peft),
// same model files, same batches, same thread count, in the same run, the sides alternating
// rounds; with the dispatch overhead (time per step outside the native step). The measuring
// lives in cases/train-step.ts; `npm run bench` runs every method on every model.
//
// Usage: node --import tsx scripts/bench/train-step.ts [--model vit-small|vit-tiny|llava-tiny|llava-small]
//          [--method full|ln|ffn|attn|lora] [--steps 10] [--warmup 2] [--rounds 2] [--threads N]
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { setNumThreads } from '../../lib/torch/index.ts';
import { withWorker } from './cases/common.ts';
import { llavaSmall, llavaTiny, vitSmall, vitTiny } from './cases/models.ts';
import { trainStepCase } from './cases/train-step.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'vit-small' },
    method: { type: 'string', default: 'full' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    threads: { type: 'string', default: String(Math.max(1, cpus().length)) },
  },
});
const models = { 'vit-tiny': vitTiny, 'vit-small': vitSmall, 'llava-tiny': llavaTiny, 'llava-small': llavaSmall } as const;
const make = models[values.model as keyof typeof models];
if (!make) throw new Error(`--model must be one of ${Object.keys(models).join(', ')}`);
const threads = Number(values.threads);
setNumThreads(threads);
const m = await make();
const r = await withWorker(threads, (w) => trainStepCase({
  group: `train ${m.name}`, modelDir: m.modelDir, dataFile: m.dataFile, method: values.method!, batch: m.batch,
  steps: Number(values.steps), warmup: Number(values.warmup), rounds: Number(values.rounds),
}, w));
console.log(`${m.name}, method ${values.method}, batch ${m.batch}, ${threads} threads, CPU fp32`);
console.log(`median ms/step: medtune ${r.medtune_ms.toFixed(2)}, PyTorch ${r.pytorch_ms.toFixed(2)}; ratio ${r.ratio.toFixed(3)} (lower is faster)`);
console.log(JSON.stringify(r.details, (k, v) => (k.endsWith('samples_ms') ? undefined : v)));
if (r.note) console.log(`note: ${r.note}`);
