// `npm start`: the README's main command. LN-tuning (the "LayerNorm as a catalyst" paper's
// method) of an embedded tiny LLaVA on a small bundled medical-VQA-style set, through
// `medtune train`'s own code path (lib/train fineTune: the dataset file is read, tokenized with
// the checkpoint's chat template and its images preprocessed by lib/data, batch by batch). It
// prints the trainable-parameter report, the loss as it falls, the held-out questions answered
// right before and after, and where the trained LayerNorm tensors were saved. No Python, no
// downloads: the model is made with createModel + save, its tokenizer and the data are
// generated deterministically (scripts/start/).
//
//   npm start [-- --out DIR] [--cache DIR]     (defaults: runs/start, .cache/start)
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { PACKAGE_ROOT } from '../lib/torch/index.ts';
import { fineTune, type FineTuneOptions } from '../lib/train/run.ts';
import { heldOutAnswers } from './start/held-out.ts';
import { writeTinyLlava } from './start/tiny-llava.ts';
import { type VqaRecord, writeTinyVqaSet } from './start/tiny-vqa.ts';

const { values } = parseArgs({ options: { out: { type: 'string' }, cache: { type: 'string' } } });
const root = values.cache ?? join(PACKAGE_ROOT, '.cache', 'start');
const out = values.out ?? join(PACKAGE_ROOT, 'runs', 'start');
// Bump when the generated model or data change, so an old cache is not reused.
const VERSION = 'llava-vqa-1';

async function ensureExample(): Promise<{ model: string; data: string; images: string }> {
  const base = join(root, VERSION);
  const model = join(base, 'tiny-llava');
  const data = join(base, 'vqa', 'vqa.json');
  const images = join(base, 'vqa', 'images');
  // Each writer finishes with the file checked here, so an interrupted run is redone.
  if (!existsSync(data)) await writeTinyVqaSet(join(base, 'vqa'));
  if (!existsSync(join(model, 'preprocessor_config.json'))) {
    const records = JSON.parse(readFileSync(data, 'utf8')) as VqaRecord[];
    await writeTinyLlava(model, records.flatMap((r) => [r.question, r.answer]));
  }
  return { model, data, images };
}

const { model, data, images } = await ensureExample();
const rel = (p: string) => relative(process.cwd(), p) || '.';

const EXAMPLE: FineTuneOptions = {
  model,
  data,
  images,
  split: 'train',
  method: { method: 'ln' },
  // LN-tuning takes large learning rates (few, scale-like parameters): ~35 s on two cores.
  config: { steps: 300, batchSize: 16, lr: 5e-2, optimizer: 'adamw', weightDecay: 0, schedule: 'cosine', warmup: 10, seed: 0, out },
};

console.log(`medtune: LN-tuning ${rel(model)} (tiny LLaVA: CLIP tower + LLaMA + projector) on ${rel(data)} (VQA-RAD layout, images in ${rel(images)})`);
const result = await fineTune(EXAMPLE);
const first = result.losses[0]!;
const last = result.losses.at(-1)!;
const tail = result.losses.slice(-10);
console.log(`loss ${first.toFixed(4)} -> ${last.toFixed(4)} over ${result.steps} steps (mean of the last 10: ${(tail.reduce((a, b) => a + b, 0) / tail.length).toFixed(4)})`);
const before = await heldOutAnswers(model, data, images, null);
const after = await heldOutAnswers(model, data, images, result.out);
console.log(`held-out questions (test split) answered exactly: ${before.correct}/${before.total} before, ${after.correct}/${after.total} after LN-tuning`);
console.log(`saved: ${result.weightFiles.map((f) => join(rel(result.out), f)).join(', ')} (+ medtune_method.json, trainer_state.json, training_config.json, train_log.jsonl)`);
