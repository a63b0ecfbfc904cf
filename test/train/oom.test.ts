// Out-of-memory errors in training steps (issue 7, item 3). There is no GPU here, so the native
// layer's test-only fault injection (MEDTUNE_INJECT_OOM=<stage>, runtime/step_stage.h) throws a
// real c10::OutOfMemoryError at the named stage; MEDTUNE_INJECT_OOM_MIN_BATCH limits it to large
// micro-batches, as a real memory limit would. Checked: the Error's code and message (stage,
// batch shapes, what to change), weights and optimizer untouched, gradients cleared, and that the
// same model then trains with a smaller batch to PyTorch's losses.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { loadModel, type Model } from '../../lib/models/index.ts';
import { nativePart } from '../../lib/torch/native.ts';
import type { TensorHandle } from '../../lib/torch/native-types.ts';
import { resolveTrainConfig, type TrainConfig } from '../../lib/train/config.ts';
import { TensorFileDataset } from '../../lib/train/dataset.ts';
import { silentProgress } from '../../lib/train/progress.ts';
import { buildOptimizer, train } from '../../lib/train/trainer.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture } from '../helpers/python.ts';

let fixture: string;
let work: string;
before(() => {
  fixture = cachedFixture('llava-train', 'make_llava_train_fixture.py');
  work = mkdtempSync(join(tmpdir(), 'medtune-oom-'));
});
after(() => rmSync(work, { recursive: true, force: true }));
afterEach(() => {
  delete process.env['MEDTUNE_INJECT_OOM'];
  delete process.env['MEDTUNE_INJECT_OOM_MIN_BATCH'];
});

/** The tiny LLaVA with only its norms trainable (the LN-tuning mask, as the parity test sets it). */
async function lnModel(): Promise<Model> {
  const model = await loadModel(join(fixture, 'model'));
  model.setRequiresGrad('all', false);
  model.setRequiresGrad(model.parameters().filter((p) => p.kind === 'norm').map((p) => p.name), true);
  return model;
}

function snapshot(model: Model): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const p of model.parameters()) {
    const t = model.parameter(p.name);
    out.set(p.name, t.toTypedArray() as Float32Array);
    t.dispose();
  }
  return out;
}

function assertUnchanged(model: Model, before: Map<string, Float32Array>, what: string): void {
  for (const p of model.parameters()) {
    const t = model.parameter(p.name);
    assert.deepEqual(t.toTypedArray(), before.get(p.name), `${what}: ${p.name} unchanged`);
    const g = t.grad;
    assert.equal(g, null, `${what}: ${p.name} has no gradient left`);
    t.dispose();
  }
}

const CONFIG: Partial<TrainConfig> = { optimizer: 'adamw', lr: 1e-2, weightDecay: 0, schedule: 'constant', warmup: 0, maxGradNorm: 1.0, seed: 6 };

const STAGES = [
  { inject: 'load', tag: '[load]', where: 'loading the batch onto the device' },
  { inject: 'forward', tag: '[forward layer 0 (vision)]', where: 'the forward pass (vision layer 0, CLIPEncoderLayer)' },
  { inject: 'forward.language.1', tag: '[forward layer 1 (language)]', where: 'the forward pass (language layer 1, LlamaDecoderLayer)' },
  { inject: 'loss', tag: '[loss]', where: 'the loss (output head and loss function)' },
  { inject: 'backward', tag: '[backward]', where: 'the backward pass' },
  { inject: 'optimizer', tag: '[optimizer step]', where: 'the optimizer step' },
];

describe('an out-of-memory training step is an Error that names the stage', () => {
  for (const s of STAGES) {
    it(`MEDTUNE_INJECT_OOM=${s.inject}`, async () => {
      const model = await lnModel();
      const data = await TensorFileDataset.open(join(fixture, 'train.safetensors'));
      try {
        const before = snapshot(model);
        process.env['MEDTUNE_INJECT_OOM'] = s.inject;
        const config = resolveTrainConfig({ ...CONFIG, batchSize: 3, steps: 2, out: join(work, `stage-${s.inject}`) });
        await assert.rejects(train({ model, train: data, config, progress: silentProgress, print: () => {} }), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'MEDTUNE_OUT_OF_MEMORY');
          assert.ok(err.message.startsWith(`step 1: out of memory ${s.tag} on cpu in ${s.where}`), err.message);
          assert.match(err.message, /of a training step, batch \(attention_mask \[3, 16\], input_ids \[3, 16\], labels \[3, 16\], pixel_values \[3, 3, 8, 8\]\)/);
          assert.match(err.message, /--batch-size/);
          assert.match(err.message, /shorter sequences/);
          assert.match(err.message, /--gradient-checkpointing/);
          assert.match(err.message, /injected by MEDTUNE_INJECT_OOM/);
          if (s.inject !== 'optimizer') assert.match(err.message, /weights and optimizer state are as before it, its gradients were cleared/);
          return true;
        });
        assertUnchanged(model, before, s.inject);
      } finally {
        data.dispose();
        model.dispose();
      }
    });
  }

  it('a micro-batch running out of memory after another one accumulated gradients leaves none behind', async () => {
    const model = await lnModel();
    const data = await TensorFileDataset.open(join(fixture, 'train.safetensors'));
    const config = resolveTrainConfig({ ...CONFIG, batchSize: 2, steps: 1, out: join(work, 'accum') });
    const { optimizer } = buildOptimizer(model, config);
    const small = await data.batch([0, 1]);
    const large = await data.batch([2, 3, 4, 5]);
    try {
      const before = snapshot(model);
      process.env['MEDTUNE_INJECT_OOM'] = 'backward';
      process.env['MEDTUNE_INJECT_OOM_MIN_BATCH'] = '4';
      const handles = (b: typeof small) => Object.fromEntries(Object.entries(b).map(([k, t]) => [k, t!.handle])) as Record<string, TensorHandle>;
      const addon = nativePart<{ trainStepAsync(m: unknown, o: unknown, w: Record<string, TensorHandle>[], opts: object): Promise<{ loss: number }> }>();
      await assert.rejects(addon.trainStepAsync(model.handle, optimizer.handle, [handles(small), handles(large)], { lrs: [1e-2], maxGradNorm: 1, lossScaling: 'tokens' }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'MEDTUNE_OUT_OF_MEMORY');
          assert.match(err.message, /^out of memory \[backward\] on cpu in the backward pass of a training step, micro-batch 2 of 2 \(attention_mask \[4, 16\]/);
          return true;
        });
      assertUnchanged(model, before, 'after the failed window');
      const state = optimizer.state();
      assert.deepEqual(Object.keys(state).filter((k) => /exp_avg/.test(k)), [], 'the optimizer took no step (no moment estimates yet)');
      for (const x of Object.values(state)) x.dispose();
      // The same window without the large micro-batch runs.
      const r = await addon.trainStepAsync(model.handle, optimizer.handle, [handles(small)], { lrs: [1e-2], maxGradNorm: 1, lossScaling: 'tokens' });
      assert.ok(Number.isFinite(r.loss) && r.loss > 0);
    } finally {
      for (const b of [small, large]) for (const t of Object.values(b)) t?.dispose();
      optimizer.dispose();
      data.dispose();
      model.dispose();
    }
  });
});

describe('training continues with a smaller batch after running out of memory', () => {
  it('tiny LLaVA, LN-tuning: batch 4 runs out of memory, then batch 2 trains to PyTorch\'s losses', async (t) => {
    const small = { ...CONFIG, batchSize: 2, gradAccum: 1, steps: 3 };
    const refDir = cachedFixture('llava-train-reference', 'train_reference.py', [join(fixture, 'model'), join(fixture, 'train.safetensors'),
      JSON.stringify([{ ...resolveTrainConfig({ ...small, out: 'unused' }), trainableKind: 'norm' }])]);
    const ref = JSON.parse(readFileSync(join(refDir, '0', 'result.json'), 'utf8')) as { steps: { loss: number }[] };
    const model = await lnModel();
    const data = await TensorFileDataset.open(join(fixture, 'train.safetensors'));
    try {
      const before = snapshot(model);
      process.env['MEDTUNE_INJECT_OOM'] = 'forward';
      process.env['MEDTUNE_INJECT_OOM_MIN_BATCH'] = '4';
      const big = resolveTrainConfig({ ...CONFIG, batchSize: 4, steps: 3, out: join(work, 'big') });
      await assert.rejects(train({ model, train: data, config: big, progress: silentProgress, print: () => {} }), { code: 'MEDTUNE_OUT_OF_MEMORY' });
      assertUnchanged(model, before, 'after the failed run');
      // Same process, same model, the injection still armed for batches of 4: batch 2 passes.
      const result = await train({ model, train: data, config: resolveTrainConfig({ ...small, out: join(work, 'small') }), progress: silentProgress, print: () => {} });
      assertClose(result.losses, ref.steps.map((s) => s.loss), { atol: 0, rtol: 1e-4, message: 'losses after the out-of-memory step' });
      t.diagnostic(`losses ${result.losses.map((l) => l.toFixed(6)).join(', ')} (PyTorch ${ref.steps.map((s) => s.loss.toFixed(6)).join(', ')})`);
    } finally {
      data.dispose();
      model.dispose();
    }
  });
});
