// Memory options of training (issue 7, item 3), on tiny transformers-made models, CPU fp32:
// - activation checkpointing: losses and every gradient equal to the plain forward/backward
//   (full fine-tuning, LN-tuning, LoRA; ViT with dropout on, so the recomputation must replay
//   the RNG);
// - chunked cross-entropy: loss and gradients equal to the whole-logits path over several
//   chunks, with -100 labels and num_items_in_batch scaling;
// - LN-tuning runs no weight-gradient matmul for frozen Linear layers, and frozen weights get no
//   gradient (ATen operators recorded through libtorch's RecordFunction);
// - bf16 loading converts each tensor once (dtype and values; memory in scripts/bench/memory.ts).
// The trainer-level parity with PyTorch of the default (chunked) loss is test/train/trainer-parity.test.ts.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadModel, type Model } from '../../lib/models/index.ts';
import { applyMethod, type MethodSpec } from '../../lib/peft/index.ts';
import { manualSeed, noGrad, tensor, type Tensor } from '../../lib/torch/index.ts';
import { nativePart } from '../../lib/torch/native.ts';
import { TensorFileDataset } from '../../lib/train/dataset.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture } from '../helpers/python.ts';

type Batch = Record<string, Tensor>;

interface Grads { loss: number; grads: Map<string, Float32Array> }

/** Loss and the gradient of every trainable parameter after one forward/backward. */
async function lossAndGrads(model: Model, batch: Batch, opts: { logits?: boolean; seed?: number } = {}): Promise<Grads> {
  manualSeed(opts.seed ?? 11);
  const out = await model.forward(batch, { logits: opts.logits ?? true });
  const loss = out['loss']!;
  loss.backward();
  const value = loss.toTypedArray()[0] as number;
  for (const t of Object.values(out)) t.dispose();
  const grads = new Map<string, Float32Array>();
  for (const p of model.parameters()) {
    const param = model.parameter(p.name);
    const g = param.grad;
    if (p.requiresGrad) {
      // (LLaVA's last vision layer is trainable but unused: vision_feature_layer -2.)
      if (g) grads.set(p.name, g.toTypedArray() as Float32Array);
    } else {
      assert.equal(g, null, `${p.name} is frozen and has no gradient`);
    }
    g?.dispose();
    param.grad = null;
    param.dispose();
  }
  return { loss: value, grads };
}

function assertSameGrads(a: Grads, b: Grads, what: string, tol = 1e-6): number {
  assertClose([a.loss], [b.loss], { atol: tol, rtol: tol, message: `${what}: loss` });
  assert.deepEqual([...a.grads.keys()], [...b.grads.keys()], `${what}: same trainable parameters`);
  let worst = 0;
  for (const [name, g] of a.grads) {
    const h = b.grads.get(name)!;
    assertClose(g, h, { atol: tol, rtol: tol, message: `${what}: gradient of ${name}` });
    for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i]! - h[i]!));
  }
  return worst;
}

async function batchOf(file: string, indices: number[]): Promise<Batch> {
  const data = await TensorFileDataset.open(file);
  try {
    return (await data.batch(indices)) as Batch;
  } finally {
    data.dispose();
  }
}

const METHODS = [
  { label: 'full fine-tuning', spec: null },
  { label: 'LN-tuning', spec: { method: 'ln' } },
  { label: 'LoRA (r 4 on q, v)', spec: { method: 'lora', lora: { r: 4, alpha: 8 } } },
] as const;

async function withMethod(dir: string, spec: (typeof METHODS)[number]['spec'], opts: Parameters<typeof loadModel>[1] = {}): Promise<Model> {
  const model = await loadModel(dir, opts);
  if (spec) {
    await applyMethod(model, spec as MethodSpec);
    // LoRA's B starts at zero, which would make A's gradient zero: give B values so that every
    // adapter gradient is exercised.
    for (const p of model.parameters().filter((q) => q.name.includes('lora_B'))) {
      const t = model.parameter(p.name);
      const fill = tensor(Array.from({ length: p.shape.reduce((x, y) => x * y, 1) }, (_, i) => Math.sin(i + 1) * 0.1)).reshape(...p.shape);
      noGrad(() => t.copy_(fill));
      fill.dispose();
      t.dispose();
    }
  } else {
    model.setRequiresGrad('all', true);
  }
  return model;
}

let llavaModel: string;
let llavaData: string;
let vitModel: string;
let vitData: string;
before(() => {
  const llava = cachedFixture('llava-train', 'make_llava_train_fixture.py');
  llavaModel = join(llava, 'model');
  llavaData = join(llava, 'train.safetensors');
  const vit = cachedFixture('vit-nih', 'make_vit_nih_fixture.py');
  vitModel = join(vit, 'model');
  vitData = join(vit, 'train.safetensors');
});

describe('activation checkpointing gives the same losses and gradients', () => {
  for (const { label, spec } of METHODS) {
    it(`tiny LLaVA (CLIP tower + LLaMA), ${label}`, async (t) => {
      const batch = await batchOf(llavaData, [0, 3, 5]);
      const model = await withMethod(llavaModel, spec);
      try {
        model.train(true);
        const plain = await lossAndGrads(model, batch);
        const layers = model.setMemoryOptions({ gradientCheckpointing: true }).checkpointedLayers;
        assert.equal(layers, 4, 'two CLIP encoder layers and two LLaMA decoder layers are checkpointed');
        // The layers really run through the checkpointing node.
        const probe = await model.forward(batch, { outputHiddenStates: true });
        assert.equal(probe['hidden_states.1']!.gradFn, 'medtune::CheckpointBackward');  // decoder layer 0's output
        for (const x of Object.values(probe)) x.dispose();
        const checkpointed = await lossAndGrads(model, batch);
        const worst = assertSameGrads(checkpointed, plain, label);
        t.diagnostic(`${plain.grads.size} gradients, largest difference ${worst.toExponential(1)}`);
      } finally {
        model.dispose();
        for (const x of Object.values(batch)) x.dispose();
      }
    });
  }
  for (const { label, spec } of METHODS) {
    it(`tiny ViT with dropout 0.1 (replayed RNG), ${label}`, async (t) => {
      const batch = await batchOf(vitData, [0, 1, 2, 3]);
      const model = await withMethod(vitModel, spec, { configOverrides: { hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 } });
      try {
        model.train(true);
        const plain = await lossAndGrads(model, batch);
        // Dropout is really on: another seed gives another loss.
        const other = await lossAndGrads(model, batch, { seed: 12 });
        assert.notEqual(other.loss, plain.loss, 'dropout draws from the seeded generator');
        assert.equal(model.setMemoryOptions({ gradientCheckpointing: true }).checkpointedLayers, 2);
        const checkpointed = await lossAndGrads(model, batch);
        const worst = assertSameGrads(checkpointed, plain, label);
        t.diagnostic(`${plain.grads.size} gradients, largest difference ${worst.toExponential(1)}`);
      } finally {
        model.dispose();
        for (const x of Object.values(batch)) x.dispose();
      }
    });
  }
});

describe('chunked cross-entropy equals the whole-logits loss', () => {
  for (const { label, spec } of METHODS) {
    it(`tiny LLaVA, ${label}: chunks of 5 tokens, -100 labels, with and without num_items_in_batch`, async (t) => {
      const batch = await batchOf(llavaData, [1, 2, 4]);
      const model = await withMethod(llavaModel, spec);
      try {
        const labels = batch['labels']!.toTypedArray() as BigInt64Array;
        assert.ok(labels.some((v) => v === -100n) && labels.some((v) => v !== -100n), 'the batch has ignored and supervised tokens');
        model.setMemoryOptions({ lossChunkTokens: 5 });  // 48 positions: 10 chunks, the last one short
        const whole = await lossAndGrads(model, batch, { logits: true });
        const chunked = await lossAndGrads(model, batch, { logits: false });
        let worst = assertSameGrads(chunked, whole, `${label}, mean over supervised tokens`);
        // Gradient accumulation's scaling: the sum divided by the window's supervised-token count.
        const scaled = { ...batch, num_items_in_batch: tensor([37], { dtype: 'int64' }) };
        const wholeN = await lossAndGrads(model, scaled, { logits: true });
        const chunkedN = await lossAndGrads(model, scaled, { logits: false });
        worst = Math.max(worst, assertSameGrads(chunkedN, wholeN, `${label}, num_items_in_batch`));
        assert.ok(Math.abs(wholeN.loss - whole.loss) > 1e-3, 'num_items_in_batch changes the loss');
        // Without logits the output has no logits tensor.
        const out = await model.forward(batch, { logits: false, grad: false });
        assert.deepEqual(Object.keys(out).filter((k) => k === 'logits' || k === 'loss'), ['loss']);
        for (const x of Object.values(out)) x.dispose();
        t.diagnostic(`largest difference ${worst.toExponential(1)}`);
      } finally {
        model.dispose();
        for (const x of Object.values(batch)) x.dispose();
      }
    });
  }

  it('checkpointing and chunking together, full fine-tuning', async () => {
    const batch = await batchOf(llavaData, [0, 6, 7]);
    const model = await withMethod(llavaModel, null);
    try {
      const plain = await lossAndGrads(model, batch, { logits: true });
      model.setMemoryOptions({ gradientCheckpointing: true, lossChunkTokens: 7 });
      assertSameGrads(await lossAndGrads(model, batch, { logits: false }), plain, 'checkpointed + chunked');
    } finally {
      model.dispose();
      for (const x of Object.values(batch)) x.dispose();
    }
  });

  it('rejects a bad chunk size', async () => {
    const model = await loadModel(llavaModel);
    try {
      assert.throws(() => model.setMemoryOptions({ lossChunkTokens: -1 }), /lossChunkTokens must be a whole number >= 0/);
      assert.throws(() => model.setMemoryOptions({ lossChunkTokens: 2.5 }), /lossChunkTokens must be a whole number >= 0/);
      assert.deepEqual(model.setMemoryOptions({ lossChunkTokens: 0 }), { checkpointedLayers: 0, lossChunkTokens: 0 });
    } finally {
      model.dispose();
    }
  });
});

interface OpCounter {
  opCounterStart(names: string[]): void;
  opCounterStop(): { name: string; shapes: number[][] }[];
}

interface Matmul { call: string; out: [number, number] }

/** mm / addmm / bmm calls of a backward pass whose contracted dimension is one of `rows`, with their output shapes. */
function weightGradientMatmuls(calls: { name: string; shapes: number[][] }[], rows: Set<number>): Matmul[] {
  const out: Matmul[] = [];
  for (const { name, shapes } of calls) {
    const [a, b] = name === 'aten::addmm' ? [shapes[1]!, shapes[2]!] : [shapes[0]!, shapes[1]!];
    const contracted = a[a.length - 1]!;
    if (rows.has(contracted)) out.push({ call: `${name} ${JSON.stringify(a)} x ${JSON.stringify(b)}`, out: [a[a.length - 2]!, b[b.length - 1]!] });
  }
  return out;
}

describe('LN-tuning computes no weight gradients for frozen layers', () => {
  // 3 examples: 48 text positions, 3 x 5 vision tokens, 3 x 4 projected image features. No
  // feature dimension of the tiny model is one of these, so a matmul contracting over one of
  // them sums over tokens: a weight gradient.
  const rows = new Set([48, 15, 12]);
  for (const method of ['ln', 'full'] as const) {
    it(`tiny LLaVA, ${method}: matmuls of the backward pass${method === 'ln' ? ' (none over tokens)' : ' (one for each Linear weight)'}`, async (t) => {
      const batch = await batchOf(llavaData, [0, 1, 2]);
      const model = await withMethod(llavaModel, method === 'ln' ? { method: 'ln' } : null);
      const counter = nativePart<OpCounter>();
      try {
        const out = await model.forward(batch, { logits: false });
        counter.opCounterStart(['aten::mm', 'aten::addmm', 'aten::bmm', 'aten::matmul']);
        let calls;
        try {
          out['loss']!.backward();
        } finally {
          calls = counter.opCounterStop();
        }
        for (const x of Object.values(out)) x.dispose();
        const weightGrads = weightGradientMatmuls(calls.filter((c) => c.name !== 'aten::matmul'), rows);
        // The last CLIP layer and the post-norm do not run (vision_feature_layer -2): no gradient either way.
        const unused = (name: string) => name.startsWith('vision_tower.encoder.layers.1.') || name.startsWith('vision_tower.post_layernorm.');
        const linearWeights = model.parameters().filter((p) => p.shape.length === 2 && ['attention', 'mlp', 'projector', 'head'].includes(p.kind) && !unused(p.name));
        if (method === 'ln') {
          assert.deepEqual(weightGrads.map((m) => m.call), [], 'no matmul over tokens: frozen Linear weights get no gradient computation');
          assert.ok(calls.length > 0, 'the backward pass did run matmuls (activation gradients)');
        } else {
          // The control: with every weight trainable, each Linear weight's gradient is such a matmul.
          const shapes = weightGrads.map((m) => m.out.join('x'));
          for (const p of linearWeights) {
            const [o, i] = p.shape as [number, number];
            assert.ok(shapes.includes(`${o}x${i}`) || shapes.includes(`${i}x${o}`), `${p.name}: a weight-gradient matmul of shape ${o}x${i}`);
          }
          assert.ok(weightGrads.length >= linearWeights.length, `${weightGrads.length} weight-gradient matmuls for ${linearWeights.length} Linear weights`);
        }
        for (const p of model.parameters()) {
          const g = model.parameter(p.name).grad;
          if (p.requiresGrad && !unused(p.name)) assert.ok(g, `${p.name} has a gradient`);
          else assert.equal(g, null, `${p.name} (frozen) has no gradient`);
          g?.dispose();
        }
        t.diagnostic(`${calls.length} matmuls in backward, ${weightGrads.length} over tokens; ${linearWeights.length} Linear weights`);
      } finally {
        model.dispose();
        for (const x of Object.values(batch)) x.dispose();
      }
    });
  }
});

describe('loading into bf16', () => {
  it('converts each float32 tensor of the checkpoint once, to the nearest bf16', async () => {
    const fp32 = await loadModel(llavaModel);
    const bf16 = await loadModel(llavaModel, { dtype: 'bf16' });
    try {
      for (const p of bf16.parameters()) {
        assert.equal(p.dtype, 'bfloat16', p.name);
        const a = fp32.parameter(p.name);
        const want = a.to('bfloat16');
        const got = bf16.parameter(p.name);
        assert.deepEqual(got.toTypedArray(), want.toTypedArray(), `${p.name}: round-to-nearest-even bf16 of the float32 value`);
        for (const x of [a, want, got]) x.dispose();
      }
    } finally {
      fp32.dispose();
      bf16.dispose();
    }
  });
});
