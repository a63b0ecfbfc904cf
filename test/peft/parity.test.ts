// Step-for-step parity with PyTorch on CPU in float32: 5 AdamW steps on a ViT classifier with
// NIH ChestX-ray14-style multi-label data (14 findings, BCE), for LoRA (peft; both sides start from
// the same adapter file, LoRA weights and modules_to_save training), DoRA + rsLoRA, LN-, FFN- and
// attention-tuning and full fine-tuning. Reference: scripts/python/peft_reference.py `train`
// (transformers 5.18 + peft 0.21 + torch.optim.AdamW). Per-step losses within 1e-4 relative.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadModel, loadSafetensors } from '../../lib/models/index.ts';
import { applyMethod, type MethodSpec, trainableReport } from '../../lib/peft/index.ts';
import type { Tensor } from '../../lib/torch/index.ts';
import { createOptimizer } from '../../lib/train/optimizer.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture, runPythonJson } from '../helpers/python.ts';

const STEPS = 5;
const LR = 1e-3;

interface Case {
  name: string;
  spec: MethodSpec;
  python: { method: string; adapter?: string; extra?: string };
}

let dir: string;
let batch: Record<string, Tensor>;
let reference: { losses: number[]; trainable: number }[];
let cases: Case[];

before(async () => {
  dir = cachedFixture('peft', 'make_peft_fixtures.py', [], { dependsOn: ['peft_reference.py', 'timm_vit_reference.py'] });
  batch = (await loadSafetensors(join(dir, 'nih.safetensors'))).tensors;
  cases = [
    { name: 'LoRA q,v + classifier (from a peft adapter)', spec: { method: 'lora', lora: { initAdapter: join(dir, 'vit_nih_lora') } }, python: { method: 'lora', adapter: join(dir, 'vit_nih_lora') } },
    { name: 'DoRA + rsLoRA (from a peft adapter)', spec: { method: 'lora', lora: { initAdapter: join(dir, 'vit_nih_dora') } }, python: { method: 'lora', adapter: join(dir, 'vit_nih_dora') } },
    { name: 'LN-tuning + classifier', spec: { method: 'ln', trainExtra: 'classifier' }, python: { method: 'ln', extra: 'classifier' } },
    { name: 'FFN-tuning', spec: { method: 'ffn' }, python: { method: 'ffn' } },
    { name: 'attention-tuning', spec: { method: 'attn' }, python: { method: 'attn' } },
    { name: 'full fine-tuning', spec: { method: 'full' }, python: { method: 'full' } },
  ];
  const jobs = cases.map((c) => ({ model: join(dir, 'vit_nih'), inputs: join(dir, 'nih.safetensors'), steps: STEPS, lr: LR, ...c.python }));
  const file = join(mkdtempSync(join(tmpdir(), 'medtune-parity-')), 'jobs.json');
  writeFileSync(file, JSON.stringify(jobs));
  reference = runPythonJson('peft_reference.py', ['train', file]);
});

describe('5 AdamW steps agree with PyTorch + peft (ViT, NIH-style multi-label)', () => {
  it('per-step losses within 1e-4 relative and equal trainable counts, for every method', async () => {
    for (const [i, c] of cases.entries()) {
      const model = await loadModel(join(dir, 'vit_nih'));
      const applied = await applyMethod(model, c.spec);
      assert.equal(trainableReport(model, applied).trainable, reference[i]!.trainable, `${c.name}: trainable count`);
      model.train();
      const params = applied.trainable.map((name) => ({ name, tensor: model.parameter(name) }));
      const optimizer = createOptimizer({ kind: 'adamw', lr: LR, weightDecay: 0 }, params);
      const losses: number[] = [];
      for (let step = 0; step < STEPS; step++) {
        optimizer.zeroGrad();
        const out = await model.forward({ pixel_values: batch['pixel_values']!, labels: batch['labels']! }, { grad: true });
        const loss = out['loss']!;
        loss.backward();
        optimizer.step();
        losses.push(loss.item());
        for (const t of Object.values(out)) t.dispose();
      }
      assertClose(losses, reference[i]!.losses, { atol: 0, rtol: 1e-4, message: `${c.name}: losses` });
      assert.ok(losses[STEPS - 1]! < losses[0]!, `${c.name}: the loss falls`);
      optimizer.dispose();
      for (const p of params) p.tensor.dispose();
      model.dispose();
    }
  });
});
