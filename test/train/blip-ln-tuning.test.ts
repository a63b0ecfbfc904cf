// LN-tuning of the BLIP (MISS-style) VQA model, step for step against PyTorch: the tiny BLIP
// checkpoint in Salesforce BLIP's .pth layout, VQA-RAD-layout training questions read and
// tokenized by medtune, the `ln` preset (every LayerNorm), BLIP's decoder loss, AdamW, clipping,
// 5 steps. The reference (scripts/python/blip_train_reference.py) runs transformers'
// BlipForQuestionAnswering with the same weights on the batches BLIP's own preprocessing makes.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel } from '../../lib/models/index.ts';
import { BlipDataset } from '../../lib/train/blip-data.ts';
import { resolveTrainConfig } from '../../lib/train/config.ts';
import { applyTuningMethod } from '../../lib/train/method.ts';
import { silentProgress } from '../../lib/train/progress.ts';
import { train } from '../../lib/train/trainer.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture } from '../helpers/python.ts';

interface RefResult { steps: { loss: number; grad_norm: number }[]; trainable: string[]; trainable_numel: number }

let fixture: string;
let work: string;
before(() => {
  fixture = cachedFixture('blip', 'make_blip_fixtures.py', [], { dependsOn: ['blip_reference_fix.py'] });
  work = mkdtempSync(join(tmpdir(), 'medtune-blip-ln-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

describe('BLIP LN-tuning parity with PyTorch (tiny BLIP, VQA-RAD layout, CPU fp32)', () => {
  it('5 steps: losses and gradient norms within 1e-4 relative, the same 40 LayerNorm tensors trained', async () => {
    const refDir = cachedFixture('blip-ln-reference', 'blip_train_reference.py', [fixture, 'ln', '5', '2', '1e-3'], { dependsOn: ['blip_reference_fix.py'] });
    const ref = JSON.parse(readFileSync(join(refDir, 'result.json'), 'utf8')) as RefResult;
    const model = await loadModel(join(fixture, 'original_vqa.pth'), { config: join(fixture, 'config_original.json') });
    const setup = await applyTuningMethod(model, { method: 'ln' });
    const data = BlipDataset.open(join(fixture, 'data', 'VQA_RAD Dataset Public.json'), model, { tokenizer: join(fixture, 'tokenizer'), split: 'train' });
    assert.equal(data.size, 3);
    assert.equal(data.lossScaling, 'batches', "BLIP's VQA loss is a mean over questions");
    const config = resolveTrainConfig({
      steps: 5, batchSize: 2, lr: 1e-3, optimizer: 'adamw', weightDecay: 0, schedule: 'constant', maxGradNorm: 1.0, shuffle: false, out: join(work, 'ln'),
    });
    const lines: string[] = [];
    const result = await train({ model, train: data, config, progress: silentProgress, print: (l) => lines.push(l), parameterReport: setup.report });
    assert.equal(result.trainable.count, ref.trainable_numel);
    assert.equal(model.parameters().filter((p) => p.requiresGrad).length, ref.trainable.length);
    const log = readFileSync(join(config.out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; grad_norm: number })
      .filter((r) => r.type === 'train');
    ref.steps.forEach((s, i) => {
      assertClose(result.losses[i]!, s.loss, { atol: 0, rtol: 1e-4, message: `loss at step ${i + 1}` });
      assertClose(log[i]!.grad_norm, s.grad_norm, { atol: 0, rtol: 1e-4, message: `gradient norm at step ${i + 1}` });
    });
    assert.ok(lines.some((l) => /trainable/i.test(l)), 'the trainable-parameter report is printed');
    model.dispose();
  });
});
