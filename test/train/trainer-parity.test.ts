// Step-for-step parity of the trainer with a PyTorch training loop (scripts/python/
// train_reference.py: torch.optim, transformers' get_scheduler, clip_grad_norm_) on CPU fp32,
// same files, same data order, same optimizer, schedule, clipping and gradient accumulation:
// - full fine-tuning of a tiny ViT classifier on NIH ChestX-ray14-style multi-label data
//   (per-micro-batch mean losses, divided by the window's micro-batch count);
// - a tiny llava-hf LLaVA on VQA-style batches (token losses, normalised by the window's
//   supervised-token count as the HF Trainer's num_items_in_batch), fully fine-tuned and with
//   only its normalisation layers trainable (the mask set through requiresGrad flags).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel } from '../../lib/models/load.ts';
import { loadSafetensors } from '../../lib/io/safetensors.ts';
import { resolveTrainConfig, type TrainConfig } from '../../lib/train/config.ts';
import { TensorFileDataset } from '../../lib/train/dataset.ts';
import { silentProgress } from '../../lib/train/progress.ts';
import { train } from '../../lib/train/trainer.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture } from '../helpers/python.ts';

const RUNS: (Partial<TrainConfig> & { label: string })[] = [
  {
    label: 'AdamW, cosine with warmup, clipping, accumulation 2, shuffled',
    optimizer: 'adamw', lr: 1e-3, weightDecay: 0.05, noDecay: 'norm-bias', schedule: 'cosine', warmup: 2,
    maxGradNorm: 1.0, batchSize: 4, gradAccum: 2, steps: 5, seed: 3, shuffle: true,
  },
  {
    label: 'SGD with momentum, MAE layer decay and no-decay rule, linear warmup ratio, file order, 2 epochs',
    optimizer: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 1e-4, noDecay: 'mae', layerDecay: 0.75, schedule: 'linear', warmup: 0.25,
    maxGradNorm: 0, batchSize: 5, gradAccum: 1, epochs: 2, seed: 0, shuffle: false,
  },
];

const LLAVA_RUNS: (Partial<TrainConfig> & { label: string; trainableKind?: 'norm' })[] = [
  {
    label: 'LLaVA, full fine-tuning, AdamW, linear warmup, accumulation 2 over answers of different lengths',
    optimizer: 'adamw', lr: 1e-3, weightDecay: 0.01, schedule: 'linear', warmup: 1, maxGradNorm: 1.0, batchSize: 3, gradAccum: 2, steps: 5, seed: 5,
  },
  {
    label: 'LLaVA, normalisation layers only (vision LayerNorms, LLaMA RMSNorms), cosine, accumulation 3',
    trainableKind: 'norm', optimizer: 'adamw', lr: 1e-2, weightDecay: 0, schedule: 'cosine', warmup: 0, maxGradNorm: 1.0, batchSize: 4, gradAccum: 3, steps: 5, seed: 6,
  },
];

interface RefResult { steps: { loss: number; grad_norm: number; lr: number }[]; trainable: string[] }

let fixture: string;
let refDir: string;
let llavaFixture: string;
let llavaRefDir: string;
let work: string;
before(() => {
  fixture = cachedFixture('vit-nih', 'make_vit_nih_fixture.py');
  const configs = RUNS.map(({ label, ...c }) => resolveTrainConfig({ ...c, out: 'unused' }));
  refDir = cachedFixture('vit-nih-train-reference', 'train_reference.py', [join(fixture, 'model'), join(fixture, 'train.safetensors'), JSON.stringify(configs)]);
  llavaFixture = cachedFixture('llava-train', 'make_llava_train_fixture.py');
  const llavaConfigs = LLAVA_RUNS.map(({ label, trainableKind, ...c }) => ({ ...resolveTrainConfig({ ...c, out: 'unused' }), trainableKind: trainableKind ?? null }));
  llavaRefDir = cachedFixture('llava-train-reference', 'train_reference.py', [join(llavaFixture, 'model'), join(llavaFixture, 'train.safetensors'), JSON.stringify(llavaConfigs)]);
  work = mkdtempSync(join(tmpdir(), 'medtune-parity-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

describe('trainer parity with PyTorch (tiny ViT, NIH-style multi-label, CPU fp32)', () => {
  RUNS.forEach(({ label, ...settings }, i) => {
    it(label, async (t) => {
      const ref = JSON.parse(readFileSync(join(refDir, String(i), 'result.json'), 'utf8')) as RefResult;
      const model = await loadModel(join(fixture, 'model'));
      const data = await TensorFileDataset.open(join(fixture, 'train.safetensors'));
      try {
        model.setRequiresGrad('all', true);
        const config = resolveTrainConfig({ ...settings, out: join(work, String(i)) });
        const result = await train({ model, train: data, config, progress: silentProgress, print: () => {} });
        const log = readFileSync(join(config.out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
        assert.equal(result.steps, ref.steps.length);
        assert.equal(result.trainable.count, model.parameterCount().total);
        assert.equal(model.parameters().length, ref.trainable.length, 'same number of trainable tensors as PyTorch');
        // Per-step losses within 1e-4 relative (the bar); in practice they agree to ~1e-7.
        assertClose(result.losses, ref.steps.map((s) => s.loss), { atol: 0, rtol: 1e-4, message: `${label}: losses` });
        assertClose(log.map((r) => r['grad_norm']!), ref.steps.map((s) => s.grad_norm), { atol: 0, rtol: 1e-4, message: `${label}: grad norms` });
        assertClose(log.map((r) => r['lr']!), ref.steps.map((s) => s.lr), { atol: 1e-15, rtol: 1e-12, message: `${label}: learning rates` });
        const mine = await loadSafetensors(join(config.out, 'trainable.safetensors'));
        const theirs = await loadSafetensors(join(refDir, String(i), 'model', 'model.safetensors'));
        assert.deepEqual(Object.keys(mine.tensors).sort(), Object.keys(theirs.tensors).sort());
        let worstWeight = 0;
        for (const [name, w] of Object.entries(theirs.tensors)) {
          const a = mine.tensors[name]!.toTypedArray() as Float32Array;
          const b = w.toTypedArray() as Float32Array;
          assertClose(a, b, { atol: 2e-6, rtol: 1e-4, message: `${label}: trained ${name}` });
          for (let k = 0; k < a.length; k++) worstWeight = Math.max(worstWeight, Math.abs(a[k]! - b[k]!));
        }
        const rel = (x: number[], y: number[]) => Math.max(...x.map((v, k) => Math.abs(v - y[k]!) / Math.abs(y[k]!)));
        t.diagnostic(`max relative difference: loss ${rel(result.losses, ref.steps.map((s) => s.loss)).toExponential(1)}, ` +
          `grad norm ${rel(log.map((r) => r['grad_norm']!), ref.steps.map((s) => s.grad_norm)).toExponential(1)}; max weight difference ${worstWeight.toExponential(1)}`);
        for (const x of [...Object.values(mine.tensors), ...Object.values(theirs.tensors)]) x.dispose();
      } finally {
        data.dispose();
        model.dispose();
      }
    });
  });
});

describe('trainer parity with PyTorch (tiny llava-hf LLaVA, token losses, CPU fp32)', () => {
  LLAVA_RUNS.forEach(({ label, trainableKind, ...settings }, i) => {
    it(label, async (t) => {
      const ref = JSON.parse(readFileSync(join(llavaRefDir, String(i), 'result.json'), 'utf8')) as RefResult;
      const model = await loadModel(join(llavaFixture, 'model'));
      const data = await TensorFileDataset.open(join(llavaFixture, 'train.safetensors'));
      try {
        assert.equal(data.lossScaling, 'tokens');
        model.setRequiresGrad('all', trainableKind === undefined);
        if (trainableKind) model.setRequiresGrad(model.parameters().filter((p) => p.kind === trainableKind).map((p) => p.name), true);
        const trainable = model.parameters().filter((p) => p.requiresGrad).map((p) => p.name);
        assert.equal(trainable.length, ref.trainable.length, 'as many trainable tensors as PyTorch');
        const config = resolveTrainConfig({ ...settings, out: join(work, `llava-${i}`) });
        const result = await train({ model, train: data, config, progress: silentProgress, print: () => {} });
        const log = readFileSync(join(config.out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
        assertClose(result.losses, ref.steps.map((s) => s.loss), { atol: 0, rtol: 1e-4, message: `${label}: losses` });
        assertClose(log.map((r) => r['grad_norm']!), ref.steps.map((s) => s.grad_norm), { atol: 0, rtol: 1e-4, message: `${label}: grad norms` });
        assertClose(log.map((r) => r['lr']!), ref.steps.map((s) => s.lr), { atol: 1e-15, rtol: 1e-12, message: `${label}: learning rates` });
        assert.ok(log.every((r) => r['supervised_tokens']! > 0 && r['tokens']! > r['supervised_tokens']!), 'token counts are logged');
        const mine = await loadSafetensors(join(config.out, 'trainable.safetensors'));
        const theirs = await loadSafetensors(join(llavaRefDir, String(i), 'model', 'model.safetensors'), { names: trainable });
        assert.deepEqual(Object.keys(mine.tensors).sort(), [...trainable].sort());
        let worst = 0;
        for (const name of trainable) {
          const a = mine.tensors[name]!.toTypedArray() as Float32Array;
          const b = theirs.tensors[name]!.toTypedArray() as Float32Array;
          assertClose(a, b, { atol: 1e-5, rtol: 1e-4, message: `${label}: trained ${name}` });
          for (let k = 0; k < a.length; k++) worst = Math.max(worst, Math.abs(a[k]! - b[k]!));
        }
        const rel = (x: number[], y: number[]) => Math.max(...x.map((v, k) => Math.abs(v - y[k]!) / Math.abs(y[k]!)));
        t.diagnostic(`max relative difference: loss ${rel(result.losses, ref.steps.map((s) => s.loss)).toExponential(1)}, ` +
          `grad norm ${rel(log.map((r) => r['grad_norm']!), ref.steps.map((s) => s.grad_norm)).toExponential(1)}; max weight difference ${worst.toExponential(1)}`);
        for (const x of [...Object.values(mine.tensors), ...Object.values(theirs.tensors)]) x.dispose();
      } finally {
        data.dispose();
        model.dispose();
      }
    });
  });
});
