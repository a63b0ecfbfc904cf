// GPU check (needs a CUDA device; not part of `npm test`): a real CUDA out-of-memory error in a
// training step. A LLaMA-shaped model in bf16 is trained with LN-tuning on a batch that cannot
// fit; the step must fail with MEDTUNE_OUT_OF_MEMORY naming its stage, leave the weights as they
// were and no gradients behind, and the same model must then train with a batch that fits, with
// and without activation checkpointing. Prints what happened and the allocator's numbers.
//
// Usage: node --import tsx scripts/bench/cuda-oom.ts [--layers 16] [--hidden 4096] [--seq 1024] [--big 256] [--small 2]
import assert from 'node:assert/strict';
import { parseArgs } from 'node:util';
import { createModel } from '../../lib/models/index.ts';
import { cuda, ones, randint } from '../../lib/torch/index.ts';
import { nativePart } from '../../lib/torch/native.ts';
import type { TensorHandle } from '../../lib/torch/native-types.ts';
import { resolveTrainConfig } from '../../lib/train/config.ts';
import { buildOptimizer } from '../../lib/train/trainer.ts';

const { values } = parseArgs({
  options: {
    layers: { type: 'string', default: '16' },
    hidden: { type: 'string', default: '4096' },
    seq: { type: 'string', default: '1024' },
    big: { type: 'string', default: '256' },
    small: { type: 'string', default: '2' },
  },
});
if (!cuda.isAvailable()) {
  console.log(`skipped: no CUDA device (${JSON.stringify(cuda.status())})`);
  process.exit(0);
}
const hidden = Number(values.hidden);
const model = await createModel({
  model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 32000, hidden_size: hidden, intermediate_size: Math.round((hidden * 8) / 3 / 256) * 256,
  num_hidden_layers: Number(values.layers), num_attention_heads: hidden / 128, num_key_value_heads: hidden / 128, max_position_embeddings: 4096,
  rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false,
}, { dtype: 'bf16', device: 'cuda', seed: 0 });
model.setRequiresGrad('all', false);
const norms = model.parameters().filter((p) => p.kind === 'norm').map((p) => p.name);
model.setRequiresGrad(norms, true);
model.train(true);
const { optimizer } = buildOptimizer(model, resolveTrainConfig({ steps: 1, lr: 1e-4, out: 'unused' }));
const addon = nativePart<{ trainStepAsync(m: unknown, o: unknown, w: Record<string, TensorHandle>[], opts: object): Promise<{ loss: number }> }>();

function batch(n: number): Record<string, TensorHandle> {
  const ids = randint(0, 32000, [n, Number(values.seq)], { device: 'cuda' });
  return { input_ids: ids.handle, labels: ids.handle, attention_mask: ones([n, Number(values.seq)], { dtype: 'int64', device: 'cuda' }).handle };
}

const norm0 = model.parameter(norms[0]!);
const before = norm0.toTypedArray();
cuda.resetPeakMemoryStats(0);
try {
  await addon.trainStepAsync(model.handle, optimizer.handle, [batch(Number(values.big))], { lrs: [1e-4], maxGradNorm: 1, lossScaling: 'tokens' });
  console.log(`batch ${values.big} did not run out of memory; raise --big`);
  process.exit(1);
} catch (err) {
  const e = err as Error & { code?: string };
  console.log(`batch ${values.big}: ${e.code}\n  ${e.message}`);
  assert.equal(e.code, 'MEDTUNE_OUT_OF_MEMORY');
}
assert.deepEqual(norm0.toTypedArray(), before, 'weights unchanged');
assert.ok(model.parameters().every((p) => { const t = model.parameter(p.name); const g = t.grad; t.dispose(); return g === null; }), 'no gradients left');
console.log('after the failure:', JSON.stringify(cuda.memoryStats(0)));
for (const gc of [false, true]) {
  model.setMemoryOptions({ gradientCheckpointing: gc });
  cuda.resetPeakMemoryStats(0);
  const r = await addon.trainStepAsync(model.handle, optimizer.handle, [batch(Number(values.small))], { lrs: [1e-4], maxGradNorm: 1, lossScaling: 'tokens' });
  const s = cuda.memoryStats(0);
  console.log(`batch ${values.small}, checkpointing ${gc}: loss ${r.loss.toFixed(4)}, peak allocated ${s.available ? (s.peakAllocated / 2 ** 30).toFixed(2) : '?'} GiB`);
}
optimizer.dispose();
model.dispose();
