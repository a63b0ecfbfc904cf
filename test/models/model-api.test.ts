// The TypeScript Model API: createModel / save / loadModel round trips (transformers loads what
// medtune writes), parameters with kinds and parts, parameter() sharing storage and autograd,
// setRequiresGrad, train/eval, the Linear adapter hook (slices, merge, unmerge, detach), the
// busy guard, and disposal.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createModel, loadModel, loadSafetensors, Model, readSafetensorsHeader, saveSafetensors } from '../../lib/models/index.ts';
import { equal, liveTensors, native, noGrad, randn, tensor, tidy, type Tensor } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { runPython } from '../helpers/python.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medtune-api-'));

const vitConfig = {
  model_type: 'vit',
  architectures: ['ViTForImageClassification'],
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 32,
  image_size: 8,
  patch_size: 4,
  num_labels: 3,
  problem_type: 'multi_label_classification',
};

const llamaConfig = {
  model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 64, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 32,
};

const clipConfig = {
  model_type: 'clip_vision_model', architectures: ['CLIPVisionModel'], hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2,
  num_attention_heads: 2, image_size: 8, patch_size: 4,
};

const { architectures: _a, ...llamaText } = llamaConfig;
const { architectures: _b, ...clipVision } = clipConfig;
const llavaConfig = {
  model_type: 'llava', architectures: ['LlavaForConditionalGeneration'], image_token_index: 63, text_config: llamaText, vision_config: clipVision,
};

const timmConfig = {
  architecture: 'vit_base_patch16_224',
  num_classes: 2,
  global_pool: 'avg',
  model_args: { img_size: 8, patch_size: 4, embed_dim: 16, depth: 2, num_heads: 2, num_classes: 2, global_pool: 'avg' },
};

async function logitsOf(model: Model, pixels: Tensor): Promise<number[]> {
  const out = await model.forward({ pixel_values: pixels }, { grad: false });
  return out['logits']!.toNumbers();
}

describe('Model API', () => {
  it('createModel -> save -> transformers loads every family with the same outputs; loadModel round-trips', async () => {
    await tidy(async () => {
      const ids = tensor([[5, 9, 63, 63, 63, 63, 2, 7], [1, 63, 63, 63, 63, 3, 4, 0]]);
      const mask = tensor([[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 0]]);
      const labels = tensor([[-100, -100, -100, -100, -100, -100, 2, 7], [-100, -100, -100, -100, -100, 3, 4, -100]]);
      const pixels = randn([2, 3, 8, 8]);
      const cases: { name: string; config: Record<string, unknown>; batch: Record<string, Tensor>; output: string }[] = [
        { name: 'vit', config: vitConfig, batch: { pixel_values: pixels, labels: tensor([[1, 0, 1], [0, 0, 1]], { dtype: 'float32' }) }, output: 'logits' },
        { name: 'llama', config: llamaConfig, batch: { input_ids: ids.remainder(60), attention_mask: mask, labels }, output: 'logits' },
        { name: 'llava', config: llavaConfig, batch: { input_ids: ids, attention_mask: mask, pixel_values: pixels, labels }, output: 'logits' },
        { name: 'clip', config: clipConfig, batch: { pixel_values: pixels }, output: 'last_hidden_state' },
      ];
      const args: string[] = [];
      const ours: Record<string, Record<string, Tensor>> = {};
      for (const c of cases) {
        const model = await createModel(c.config, { seed: 7 });
        ours[c.name] = await model.forward(c.batch, { grad: false });
        const dir = join(tmp, c.name);
        const saved = await model.save(dir);
        assert.deepEqual(saved.files, [join(dir, 'model.safetensors')]);
        assert.deepEqual(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), c.config);
        await saveSafetensors(join(tmp, `${c.name}.in.safetensors`), c.batch);
        args.push(dir, join(tmp, `${c.name}.in.safetensors`), join(tmp, `${c.name}.out.safetensors`));
        const again = await loadModel(dir);
        const out = await again.forward(c.batch, { grad: false });
        assert.deepEqual(out[c.output]!.toNumbers(), ours[c.name]![c.output]!.toNumbers(), `${c.name} reloads exactly`);
        assert.deepEqual(again.parameters().map((p) => p.name), model.parameters().map((p) => p.name));
      }
      runPython('hf_forward.py', args);
      for (const c of cases) {
        const hf = (await loadSafetensors(join(tmp, `${c.name}.out.safetensors`))).tensors;
        const real = c.name === 'llama' || c.name === 'llava' ? (t: Tensor) => t.index(mask.eq(1)).toTypedArray() : (t: Tensor) => t.toTypedArray();
        assertClose(real(ours[c.name]![c.output]!), real(hf[c.output]!), { atol: 1e-5, rtol: 0, message: `transformers ${c.name} ${c.output}` });
        if (hf['loss']) assertClose(ours[c.name]!['loss']!.item(), hf['loss'].item(), { atol: 1e-6, rtol: 0, message: `transformers ${c.name} loss` });
      }
    });
  });

  it('mmap loading: the same outputs, and writes to a parameter stay private (copy-on-write)', async () => {
    await tidy(async () => {
      const model = await createModel(vitConfig, { seed: 11 });
      const dir = join(tmp, 'mmap');
      await model.save(dir);
      const pixels = randn([1, 3, 8, 8]);
      const mapped = await loadModel(dir, { mmap: true });
      assert.deepEqual(await logitsOf(mapped, pixels), await logitsOf(model, pixels));
      noGrad(() => mapped.parameter('classifier.bias').fill_(5));
      assert.deepEqual(mapped.parameter('classifier.bias').toNumbers(), [5, 5, 5]);
      const fresh = await loadModel(dir);
      assert.deepEqual(fresh.parameter('classifier.bias').toNumbers(), model.parameter('classifier.bias').toNumbers(), 'the file is unchanged');
      await assert.rejects(model.generate({ pixel_values: pixels }), /the ViTForImageClassification model does not generate text/);
    });
  });

  it('createModel is reproducible from its seed, whatever the dtype', async () => {
    await tidy(async () => {
      const a = await createModel(vitConfig, { seed: 3 });
      const b = await createModel(vitConfig, { seed: 3, dtype: 'bf16' });
      const c = await createModel(vitConfig, { seed: 4 });
      const name = 'vit.encoder.layer.1.attention.attention.value.weight';
      const wa = a.parameter(name);
      assert.ok(equal(wa.to('bfloat16'), b.parameter(name)));
      assert.ok(!equal(wa, c.parameter(name)));
    });
  });

  it('saves sharded with an index when asked, converts dtype on save, and removes the stale form', async () => {
    await tidy(async () => {
      const model = await createModel(vitConfig, { seed: 1 });
      const pixels = randn([1, 3, 8, 8]);
      const dir = join(tmp, 'sharded');
      const saved = await model.save(dir, { maxShardSize: '4KB' });
      assert.ok(saved.files.length > 2, `${saved.files.length} shards`);
      const index = JSON.parse(readFileSync(saved.index!, 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
      assert.equal(index.metadata.total_size, saved.totalBytes);
      assert.equal(Object.keys(index.weight_map).length, model.parameters().length);
      const reloaded = await loadModel(dir);
      assert.deepEqual(await logitsOf(reloaded, pixels), await logitsOf(model, pixels));

      const single = await model.save(dir, { dtype: 'bfloat16' });
      assert.equal(single.files.length, 1);
      assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
      assert.ok(readSafetensorsHeader(single.files[0]!).tensors.every((t) => t.fileDtype === 'BF16'));
      assert.equal(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))['dtype'], 'bfloat16');
      const bf16 = await loadModel(dir, { dtype: 'bf16' });
      assert.equal(bf16.dtype, 'bfloat16');
    });
  });

  it('parameters() and modules() describe kinds, parts and shapes; numel and counts add up', async () => {
    await tidy(async () => {
      const model = await createModel(vitConfig);
      const params = model.parameters();
      const by = new Map(params.map((p) => [p.name, p]));
      assert.deepEqual(by.get('vit.encoder.layer.0.attention.attention.query.weight'), {
        name: 'vit.encoder.layer.0.attention.attention.query.weight', shape: [16, 16], dtype: 'float32', device: 'cpu', numel: 256,
        kind: 'attention', part: 'vision', module: 'Linear', requiresGrad: true, persistent: true,
      });
      assert.equal(by.get('vit.encoder.layer.1.layernorm_after.bias')?.kind, 'norm');
      assert.equal(by.get('vit.encoder.layer.1.output.dense.weight')?.kind, 'mlp');
      assert.equal(by.get('classifier.weight')?.part, 'head');
      const total = params.reduce((a, p) => a + p.numel, 0);
      assert.deepEqual(model.parameterCount(), { total, trainable: total });
      const modules = model.modules();
      assert.ok(modules.some((m) => m.path === 'vit.encoder.layer.0' && m.type === 'ViTLayer'));
      assert.ok(modules.some((m) => m.path === 'vit.encoder.layer.0.attention.output.dense' && m.type === 'Linear' && m.kind === 'attention'));
      assert.ok(modules.some((m) => m.path === 'vit.layernorm' && m.type === 'LayerNorm'));
    });
  });

  it('parameter() is the parameter itself: in-place edits change the forward, backward fills its grad', async () => {
    await tidy(async () => {
      const model = await createModel(vitConfig, { seed: 2 });
      const pixels = randn([2, 3, 8, 8]);
      const before = await logitsOf(model, pixels);
      noGrad(() => model.parameter('classifier.bias').add_(1)); // as torch.no_grad() requires for a leaf
      const after = await logitsOf(model, pixels);
      assertClose(after, before.map((v) => v + 1), { atol: 1e-6 });

      const labels = tensor([[1, 0, 1], [0, 1, 1]], { dtype: 'float32' });
      model.setRequiresGrad('all', false);
      assert.equal(model.setRequiresGrad(['vit.layernorm.weight', 'classifier.weight'], true), 2);
      assert.deepEqual(model.parameterCount().trainable, 16 + 48);
      const out = await model.forward({ pixel_values: pixels, labels }, { grad: true });
      out['loss']!.backward();
      assert.ok(model.parameter('classifier.weight').grad !== null);
      assert.equal(model.parameter('classifier.bias').grad, null, 'frozen parameters get no gradient');
      assert.throws(() => model.setRequiresGrad(['nope'], true), /no parameter named 'nope'/);
    });
  });

  it('train() turns dropout on, eval() off; models load in eval mode', async () => {
    await tidy(async () => {
      const model = await createModel({ ...vitConfig, hidden_dropout_prob: 0.5 }, { seed: 5 });
      const pixels = randn([2, 3, 8, 8]);
      assert.equal(model.training, false);
      assert.deepEqual(await logitsOf(model, pixels), await logitsOf(model, pixels));
      model.train();
      assert.equal(model.training, true);
      assert.notDeepEqual(await logitsOf(model, pixels), await logitsOf(model, pixels));
      model.eval();
      assert.deepEqual(await logitsOf(model, pixels), await logitsOf(model, pixels));
    });
  });

  it('adapter hook: a delta adapter on the q and v slices of a fused qkv, merged, unmerged, detached', async () => {
    await tidy(async () => {
      const model = await createModel(timmConfig, { seed: 9 });
      const pixels = randn([2, 3, 8, 8]);
      const base = await logitsOf(model, pixels);
      const D = 16;
      model.attachAdapter('blocks.0.attn.qkv', 'delta', { slices: [[0, D], [2 * D, D]] });
      const info = model.parameters().find((p) => p.name === 'blocks.0.attn.qkv.delta.weight');
      assert.deepEqual(info && { shape: info.shape, kind: info.kind, part: info.part, persistent: info.persistent, requiresGrad: info.requiresGrad },
        { shape: [2 * D, D], kind: 'adapter', part: 'vision', persistent: false, requiresGrad: true });
      assert.deepEqual(await logitsOf(model, pixels), base, 'a zero adapter changes nothing');

      const delta = randn([2 * D, D]).mul(0.2);
      noGrad(() => model.parameter('blocks.0.attn.qkv.delta.weight').copy_(delta));
      const adapted = await logitsOf(model, pixels);
      assert.ok(Math.max(...adapted.map((v, i) => Math.abs(v - base[i]!))) > 1e-3, 'the adapter acts');

      const weight = model.parameter('blocks.0.attn.qkv.weight').clone();
      model.mergeAdapter('blocks.0.attn.qkv');
      const merged = model.parameter('blocks.0.attn.qkv.weight');
      assertClose(merged.slice(0, 0, D).toTypedArray(), weight.slice(0, 0, D).add(delta.slice(0, 0, D)).toTypedArray(), { atol: 1e-6 });
      assert.ok(equal(merged.slice(0, D, 2 * D), weight.slice(0, D, 2 * D)), 'k rows untouched');
      assertClose(merged.slice(0, 2 * D).toTypedArray(), weight.slice(0, 2 * D).add(delta.slice(0, D)).toTypedArray(), { atol: 1e-6 });
      assertClose(await logitsOf(model, pixels), adapted, { atol: 1e-5, message: 'merged forward' });

      model.unmergeAdapter('blocks.0.attn.qkv');
      assertClose(model.parameter('blocks.0.attn.qkv.weight').toTypedArray(), weight.toTypedArray(), { atol: 1e-6 });
      assertClose(await logitsOf(model, pixels), adapted, { atol: 1e-6 });

      const dir = join(tmp, 'with-adapter');
      await model.save(dir);
      assert.ok(!readSafetensorsHeader(join(dir, 'model.safetensors')).tensors.some((t) => t.name.includes('delta')), 'adapters are not saved with the base');

      assert.equal(model.detachAdapter('blocks.0.attn.qkv.weight'), true);
      assert.ok(!model.parameters().some((p) => p.kind === 'adapter'));
      assertClose(await logitsOf(model, pixels), base, { atol: 1e-6 });
      assert.throws(() => model.attachAdapter('blocks.0.norm1', 'delta'), /is a LayerNorm, not a Linear/);
      assert.throws(() => model.attachAdapter('blocks.0.attn.qkv', 'nope'), /unknown adapter kind 'nope' \(registered: delta/);
      assert.throws(() => model.attachAdapter('blocks.0.attn.qkv', 'delta', { slices: [[40, 16]] }), /slices must be ascending, disjoint/);
    });
  });

  it('refuses changes while a job uses the model, and releases everything on dispose', async () => {
    const before = liveTensors();
    await tidy(async () => {
      const model = await createModel(vitConfig);
      const queued = native().sleepAsync(100); // keeps the compute queue busy so the forward stays pending
      const pending = model.forward({ pixel_values: randn([1, 3, 8, 8]) }, { grad: false });
      assert.throws(() => model.setRequiresGrad('all', false), (err: Error & { code?: string }) => err.code === 'MEDTUNE_MODEL_BUSY');
      assert.throws(() => model.train(), /in use by a pending/);
      await Promise.all([queued, pending]);
      model.setRequiresGrad('all', false);
    });
    assert.equal(liveTensors(), before, 'tidy() disposed the model and its outputs');
    const model = await createModel(vitConfig);
    model.dispose();
    assert.throws(() => model.parameters(), (err: Error & { code?: string }) => err.code === 'MEDTUNE_DISPOSED');
    assert.ok(!existsSync(join(tmp, 'never')));
  });
});
