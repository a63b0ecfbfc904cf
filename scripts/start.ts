// `npm start`: the README's main command. Fine-tunes an embedded tiny model on a small bundled
// dataset with `medtune train`'s own code path (lib/train fineTune), printing the trainable-
// parameter report, the loss as it falls and where the result was saved. No Python, no
// downloads: the model is made with createModel + save, the data synthesised deterministically.
//
// Today: full fine-tuning of a tiny ViT chest X-ray classifier on NIH ChestX-ray14-style
// multi-label images. The EXAMPLE below is the only thing to change when the embedded default
// becomes LN-tuning of a tiny LLaVA on a bundled VQA set (model, data, method).
import { existsSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createModel, saveSafetensors } from '../lib/models/index.ts';
import { Generator, PACKAGE_ROOT, randn, tensor, tidy } from '../lib/torch/index.ts';
import { fineTune, type FineTuneOptions } from '../lib/train/run.ts';

const NIH_LABELS = [
  'Atelectasis', 'Cardiomegaly', 'Effusion', 'Infiltration', 'Mass', 'Nodule', 'Pneumonia',
  'Pneumothorax', 'Consolidation', 'Edema', 'Emphysema', 'Fibrosis', 'Pleural_Thickening', 'Hernia',
];
const IMAGE = 32;
const PATCH = 8;

const TINY_VIT = {
  model_type: 'vit', architectures: ['ViTForImageClassification'], image_size: IMAGE, patch_size: PATCH, num_channels: 3,
  hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, hidden_act: 'gelu', layer_norm_eps: 1e-12,
  qkv_bias: true, num_labels: NIH_LABELS.length, problem_type: 'multi_label_classification',
  id2label: Object.fromEntries(NIH_LABELS.map((n, i) => [String(i), n])), label2id: Object.fromEntries(NIH_LABELS.map((n, i) => [n, i])),
};

/** 128 synthetic "chest X-rays": noise, plus a bright region per finding (finding k <-> patch k). */
async function makeTinyCxr(file: string): Promise<void> {
  await tidy(async () => {
    const n = 128;
    const g = new Generator(2024);
    const findings = randn([n, NIH_LABELS.length], { generator: g }).gt(1.0).float();
    const grid = IMAGE / PATCH;
    const masks = Array.from({ length: NIH_LABELS.length }, (_, k) => {
      const m = new Float32Array(IMAGE * IMAGE);
      const r0 = Math.floor(k / grid) * PATCH;
      const c0 = (k % grid) * PATCH;
      for (let r = r0; r < r0 + PATCH; r++) for (let c = c0; c < c0 + PATCH; c++) m[r * IMAGE + c] = 1;
      return m;
    });
    const maskT = tensor(Float32Array.from(masks.flatMap((m) => Array.from(m))), { shape: [NIH_LABELS.length, IMAGE * IMAGE] });
    // gray = noise + 1.5 * sum of the finding regions, then as 3 identical channels (normalised).
    const gray = randn([n, IMAGE * IMAGE], { generator: g }).mul(0.5).add(findings.matmul(maskT).mul(1.5)).reshape(n, 1, IMAGE, IMAGE);
    const pixels = gray.expand(n, 3, IMAGE, IMAGE).contiguous();
    await saveSafetensors(file, { pixel_values: pixels, labels: findings }, { label_names: JSON.stringify(NIH_LABELS), source: 'medtune npm start (synthetic)' });
  });
}

async function ensureExample(root: string): Promise<{ model: string; data: string }> {
  const model = join(root, 'tiny-vit-cxr');
  const data = join(root, 'tiny-cxr.safetensors');
  mkdirSync(root, { recursive: true });
  if (!existsSync(join(model, 'config.json'))) {
    const m = await createModel(TINY_VIT, { seed: 0 });
    try {
      await m.save(model);
    } finally {
      m.dispose();
    }
  }
  if (!existsSync(data)) await makeTinyCxr(data);
  return { model, data };
}

const { model, data } = await ensureExample(join(PACKAGE_ROOT, '.cache', 'start'));
const out = join(PACKAGE_ROOT, 'runs', 'start');

const EXAMPLE: FineTuneOptions = {
  model,
  data,
  task: 'classify',
  method: { method: 'full' },
  config: { steps: 200, batchSize: 32, lr: 3e-3, optimizer: 'adamw', weightDecay: 0.01, schedule: 'cosine', warmup: 0.1, seed: 0, out },
};

console.log(`medtune: fine-tuning ${relative(process.cwd(), model)} (tiny ViT, 14 NIH labels) on ${relative(process.cwd(), data)}`);
const result = await fineTune(EXAMPLE);
const first = result.losses[0]!;
const last = result.losses.at(-1)!;
console.log(`loss ${first.toFixed(4)} -> ${last.toFixed(4)} over ${result.steps} steps`);
console.log(`saved: ${result.weightFiles.map((f) => join(relative(process.cwd(), result.out), f)).join(', ')} (+ trainer_state.json, training_config.json, train_log.jsonl)`);
