// Benchmark: time per optimizer step of full fine-tuning (forward, backward, clip, AdamW, zero
// grad) of a small ViT classifier on the CPU, medtune's trainer versus the same loop in PyTorch
// (scripts/python/bench_train_step.py), same model files, same batches, same thread count, in the
// same run. The two sides alternate (--rounds times each) so that a change in machine load hits
// both; reports the medians over all timed steps and their ratio.
//
// Usage: node --import tsx scripts/bench/train-step.ts [--layers 12] [--hidden 192] [--image 96]
//          [--batch 32] [--steps 10] [--warmup 2] [--rounds 2] [--threads N] [--out FILE]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { createModel, loadModel, saveSafetensors } from '../../lib/models/index.ts';
import { Generator, PACKAGE_ROOT, randn, setNumThreads, tidy } from '../../lib/torch/index.ts';
import { resolveTrainConfig } from '../../lib/train/config.ts';
import { TensorFileDataset } from '../../lib/train/dataset.ts';
import { silentProgress } from '../../lib/train/progress.ts';
import { train } from '../../lib/train/trainer.ts';
import { ensurePythonEnv } from '../setup/python-env.mjs';

const { values } = parseArgs({
  options: {
    layers: { type: 'string', default: '12' },
    hidden: { type: 'string', default: '192' },
    image: { type: 'string', default: '96' },
    batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    threads: { type: 'string', default: String(Math.max(1, cpus().length)) },
    out: { type: 'string', default: join(PACKAGE_ROOT, 'runs', 'bench-train-step.json') },
  },
});
const layers = Number(values.layers);
const hidden = Number(values.hidden);
const image = Number(values.image);
const batch = Number(values.batch);
const steps = Number(values.steps);
const warmup = Number(values.warmup);
const threads = Number(values.threads);
const rounds = Number(values.rounds);

const dir = join(PACKAGE_ROOT, '.cache', 'bench', `vit-l${layers}-h${hidden}-i${image}`);
const modelDir = join(dir, 'model');
const dataFile = join(dir, 'data.safetensors');
if (!existsSync(join(modelDir, 'config.json'))) {
  mkdirSync(dir, { recursive: true });
  const model = await createModel({
    model_type: 'vit', architectures: ['ViTForImageClassification'], hidden_size: hidden, num_hidden_layers: layers,
    num_attention_heads: Math.max(1, hidden / 64), intermediate_size: 4 * hidden, image_size: image, patch_size: 16, num_labels: 14,
    problem_type: 'multi_label_classification',
  }, { seed: 0 });
  await model.save(modelDir);
  model.dispose();
  await tidy(async () => {
    const g = new Generator(0);
    await saveSafetensors(dataFile, { pixel_values: randn([4 * batch, 3, image, image], { generator: g }), labels: randn([4 * batch, 14], { generator: g }).gt(1).float() });
  });
}

setNumThreads(threads);
const python = ensurePythonEnv({ quiet: true });

async function medtuneRound(): Promise<number[]> {
  const model = await loadModel(modelDir);
  const data = await TensorFileDataset.open(dataFile);
  model.setRequiresGrad('all', true);
  const stepMs: number[] = [];
  try {
    await train({
      model, train: data, progress: silentProgress, print: () => {},
      config: resolveTrainConfig({ steps: warmup + steps, batchSize: batch, lr: 1e-4, weightDecay: 0.01, noDecay: 'none', schedule: 'constant', shuffle: false, out: join(dir, 'run') }),
      onStep: (r) => {
        if (r.step > warmup) stepMs.push(r.step_ms);
      },
    });
  } finally {
    data.dispose();
    model.dispose();
  }
  return stepMs;
}

function pytorchRound(): number[] {
  const out = execFileSync(python, [join(PACKAGE_ROOT, 'scripts/python/bench_train_step.py'), modelDir, dataFile, String(batch), String(steps), String(warmup), String(threads)],
    { encoding: 'utf8', env: { ...process.env, CUDA_VISIBLE_DEVICES: '' }, stdio: ['ignore', 'pipe', 'ignore'] });
  return (JSON.parse(out) as { step_ms: number[] }).step_ms;
}

const mine: number[] = [];
const theirs: number[] = [];
for (let r = 0; r < rounds; r++) {
  mine.push(...(await medtuneRound()));
  theirs.push(...pytorchRound());
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const result = {
  model: { layers, hidden, image, patch: 16 },
  batch, steps, threads,
  rounds,
  medtune_ms: median(mine),
  pytorch_ms: median(theirs),
  ratio: median(mine) / median(theirs),
};
mkdirSync(dirname(values.out!), { recursive: true });
writeFileSync(values.out!, `${JSON.stringify({ ...result, medtune_all: mine, pytorch_all: theirs }, null, 2)}\n`);
console.log(`ViT ${layers} layers, hidden ${hidden}, ${image}px, batch ${batch}, ${threads} threads, CPU fp32`);
console.log(`median ms/step: medtune ${result.medtune_ms.toFixed(1)}, PyTorch ${result.pytorch_ms.toFixed(1)}; ratio ${result.ratio.toFixed(3)} (lower is faster)`);
