// CLIP vision towers and LLaVA against transformers: CLIPVisionModel in both key forms (and a
// CLIPModel's vision half); llava-hf in the four key forms transformers has written, all loading
// to identical outputs; multi-layer 'full' feature selection; the original LLaVA-Med layout with
// its placeholder expansion, with the tower inside the checkpoint or in a separate CLIP
// directory; greedy generation with images, token for token.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadModel, loadSafetensors, type LlavaSpec } from '../../lib/models/index.ts';
import type { Tensor } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture } from '../helpers/python.ts';

let dir: string;

async function reference(name: string): Promise<Record<string, Tensor>> {
  return (await loadSafetensors(join(dir, `${name}.reference.safetensors`))).tensors;
}

function realRows(logits: Tensor, mask: Tensor): number[] {
  const [B, S, V] = logits.shape as [number, number, number];
  const flat = logits.toNumbers();
  const m = mask.toNumbers();
  const out: number[] = [];
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) if (m[b * S + s]) out.push(...flat.slice((b * S + s) * V, (b * S + s + 1) * V));
  return out;
}

describe('CLIP vision tower parity with transformers', () => {
  before(() => {
    dir = cachedFixture('llava', 'make_llava_fixtures.py');
  });

  for (const form of ['clip_v5', 'clip_v4']) {
    it(`${form}: last_hidden_state, pooler_output and every hidden state within 1e-4`, async () => {
      const ref = await reference('clip');
      const model = await loadModel(join(dir, form));
      assert.equal(model.architecture, 'CLIPVisionModel');
      const out = await model.forward({ pixel_values: ref['pixel_values']! }, { grad: false, outputHiddenStates: true });
      assertClose(out['last_hidden_state']!.toTypedArray(), ref['last_hidden_state']!.toTypedArray(), { atol: 1e-4, rtol: 0 });
      assertClose(out['pooler_output']!.toTypedArray(), ref['pooler_output']!.toTypedArray(), { atol: 1e-4, rtol: 0 });
      for (let i = 0; i <= 3; i++) assertClose(out[`hidden_states.${i}`]!.toTypedArray(), ref[`hidden_states.${i}`]!.toTypedArray(), { atol: 1e-4, rtol: 0 });
      const names = model.parameters().map((p) => p.name);
      assert.ok(names.includes(form === 'clip_v4' ? 'vision_model.pre_layrnorm.weight' : 'pre_layrnorm.weight'));
      assert.equal(model.parameters().find((p) => p.name.endsWith('embeddings.class_embedding'))?.part, 'vision');
      model.dispose();
    });
  }

  it("a CLIPModel checkpoint loads its vision half; the text tower is skipped, not unexpected", async () => {
    const ref = await reference('clip_full');
    const model = await loadModel(join(dir, 'clip_full'));
    assert.deepEqual(model.loadReport.unexpected, []);
    const out = await model.forward({ pixel_values: ref['pixel_values']! }, { grad: false });
    assertClose(out['last_hidden_state']!.toTypedArray(), ref['last_hidden_state']!.toTypedArray(), { atol: 1e-4, rtol: 0 });
    assertClose(out['pooler_output']!.toTypedArray(), ref['pooler_output']!.toTypedArray(), { atol: 1e-4, rtol: 0 });
    model.dispose();
  });
});

describe('LLaVA parity with transformers', () => {
  before(() => {
    dir = cachedFixture('llava', 'make_llava_fixtures.py');
  });

  it('llava-hf in all four key forms loads to identical outputs, within 1e-4 of transformers', async () => {
    const ref = await reference('llava');
    const batch = { input_ids: ref['input_ids']!, attention_mask: ref['attention_mask']!, pixel_values: ref['pixel_values']!, labels: ref['labels']! };
    let first: number[] | null = null;
    const prefixes: Record<string, string[]> = {};
    for (const form of ['llava_saved', 'llava_v4', 'llava_v5', 'llava_v45']) {
      const model = await loadModel(join(dir, form));
      assert.equal(model.architecture, 'LlavaForConditionalGeneration');
      assert.deepEqual(model.loadReport, { unexpected: [], initialized: [] }, form);
      const out = await model.forward(batch, { grad: false });
      const logits = realRows(out['logits']!, ref['attention_mask']!);
      assertClose(logits, realRows(ref['logits']!, ref['attention_mask']!), { atol: 1e-4, rtol: 0, message: `${form} logits` });
      assertClose(out['loss']!.item(), ref['loss']!.item(), { atol: 1e-5, rtol: 0, message: `${form} loss` });
      assertClose(out['image_features']!.toTypedArray(), ref['image_features']!.toTypedArray(), { atol: 1e-4, rtol: 0, message: `${form} image features` });
      if (first) assert.deepEqual(logits, first, `${form} equals the other forms exactly`);
      first = logits;
      const spec = model.spec as LlavaSpec;
      prefixes[form] = [spec.language.decoderPrefix, spec.language.lmHead, spec.vision.prefix, spec.projector.prefix];
      model.dispose();
    }
    assert.deepEqual(prefixes, {
      llava_saved: ['language_model.model', 'language_model.lm_head', 'vision_tower', 'multi_modal_projector'],
      llava_v4: ['language_model.model', 'language_model.lm_head', 'vision_tower.vision_model', 'multi_modal_projector'],
      llava_v5: ['model.language_model', 'lm_head', 'model.vision_tower', 'model.multi_modal_projector'],
      llava_v45: ['model.language_model', 'lm_head', 'model.vision_tower.vision_model', 'model.multi_modal_projector'],
    });
  });

  it('gradients of the loss reach the vision tower, the projector and the language model as in PyTorch', async () => {
    const ref = await reference('llava');
    const model = await loadModel(join(dir, 'llava_v4'));
    const out = await model.forward({ input_ids: ref['input_ids']!, attention_mask: ref['attention_mask']!, pixel_values: ref['pixel_values']!, labels: ref['labels']! }, { grad: true });
    out['loss']!.backward();
    const names = Object.keys(ref).filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
    assert.equal(names.length, 6);
    for (const name of names) {
      const grad = model.parameter(name).grad;
      assert.ok(grad, `${name} has a gradient`);
      assertClose(grad.toTypedArray(), ref[`grad.${name}`]!.toTypedArray(), { atol: 1e-5, rtol: 1e-4, message: `grad ${name}` });
    }
    model.dispose();
  });

  it('parameters are named as in the checkpoint, with vision / projector / language parts', async () => {
    const model = await loadModel(join(dir, 'llava_v4'));
    const by = new Map(model.parameters().map((p) => [p.name, p]));
    assert.deepEqual([by.get('multi_modal_projector.linear_1.weight')?.kind, by.get('multi_modal_projector.linear_1.weight')?.part], ['projector', 'projector']);
    assert.deepEqual([by.get('vision_tower.vision_model.encoder.layers.2.layer_norm1.weight')?.kind, by.get('vision_tower.vision_model.encoder.layers.2.layer_norm1.weight')?.part], ['norm', 'vision']);
    assert.deepEqual([by.get('language_model.model.layers.1.input_layernorm.weight')?.kind, by.get('language_model.model.layers.1.input_layernorm.weight')?.part], ['norm', 'language']);
    assert.equal(by.get('language_model.lm_head.weight')?.kind, 'head');
    model.dispose();
  });

  it("vision_feature_layer [-3, -1] with the 'full' strategy (CLS kept, layers concatenated)", async () => {
    const ref = await reference('llava_multi');
    const model = await loadModel(join(dir, 'llava_multi'));
    const spec = model.spec as LlavaSpec;
    assert.deepEqual([spec.visionFeatureLayers, spec.dropCls, spec.projector.inDim, spec.imageSeqLength], [[-3, -1], false, 32, 5]);
    const out = await model.forward({ input_ids: ref['input_ids']!, attention_mask: ref['attention_mask']!, pixel_values: ref['pixel_values']! }, { grad: false });
    assertClose(realRows(out['logits']!, ref['attention_mask']!), realRows(ref['logits']!, ref['attention_mask']!), { atol: 1e-4, rtol: 0 });
    model.dispose();
  });

  it('greedy generation with images, left-padded, is token-identical to transformers for 20 tokens', async () => {
    const ref = await reference('llava');
    const model = await loadModel(join(dir, 'llava_saved'));
    const out = await model.generate(
      { input_ids: ref['gen_input_ids']!, attention_mask: ref['gen_attention_mask']!, pixel_values: ref['pixel_values']! },
      { maxNewTokens: 20, eosTokenId: [], padTokenId: 0 },
    );
    assert.deepEqual(out.sequences.toArray(), ref['greedy']!.toArray());
    model.dispose();
  });

  it('a prompt whose image tokens do not match the images is a clear error', async () => {
    const ref = await reference('llava');
    const model = await loadModel(join(dir, 'llava_saved'));
    const ids = ref['input_ids']!.slice(0, 0, 1);
    await assert.rejects(model.forward({ input_ids: ids, pixel_values: ref['pixel_values']! }, { grad: false }),
      /Image features and image tokens do not match: tokens: 4, features: 8 \(2 image\(s\) x 4; image_token_index 95\)/);
    model.dispose();
  });

  for (const form of ['llava_med', 'llava_med_sep']) {
    it(`original LLaVA-Med layout (${form === 'llava_med' ? 'tower in the checkpoint' : 'tower in a separate CLIP directory'}): placeholder expansion, logits and loss within 1e-4`, async () => {
      const ref = await reference('llava_med');
      const model = await loadModel(join(dir, form));
      assert.equal(model.architecture, 'LlavaMistralForCausalLM');
      assert.deepEqual(model.loadReport, { unexpected: [], initialized: [] });
      const spec = model.spec as LlavaSpec;
      assert.deepEqual([spec.layout, spec.language.modelType, spec.projector.names, spec.imageTokenIndex], ['original', 'mistral', '0,2', -200]);
      const names = new Set(model.parameters().map((p) => p.name));
      for (const n of ['model.layers.0.self_attn.q_proj.weight', 'model.mm_projector.0.weight', 'model.mm_projector.2.bias', 'lm_head.weight',
        'model.vision_tower.vision_tower.vision_model.encoder.layers.0.self_attn.k_proj.weight']) assert.ok(names.has(n), n);
      const out = await model.forward({ input_ids: ref['input_ids']!, attention_mask: ref['attention_mask']!, pixel_values: ref['pixel_values']!, labels: ref['labels']! }, { grad: false });
      assert.deepEqual(out['attention_mask']!.toArray(), ref['expanded_attention_mask']!.toArray());
      assert.deepEqual(out['labels']!.toArray(), ref['expanded_labels']!.toArray());
      assertClose(realRows(out['logits']!, ref['expanded_attention_mask']!), realRows(ref['logits']!, ref['expanded_attention_mask']!), { atol: 1e-4, rtol: 0 });
      assertClose(out['loss']!.item(), ref['loss']!.item(), { atol: 1e-5, rtol: 0 });

      const gen = await model.generate({ input_ids: ref['gen_input_ids']!, attention_mask: ref['gen_attention_mask']!, pixel_values: ref['pixel_values']! },
        { maxNewTokens: 20, eosTokenId: [], padTokenId: 0 });
      assert.deepEqual(gen.tokens.toArray(), ref['greedy_tokens']!.toArray());

      // Saved elsewhere, the tower's weights join the checkpoint and its local config travels along.
      const copy = join(mkdtempSync(join(tmpdir(), 'medtune-llava-')), 'saved');
      await model.save(copy);
      assert.ok(existsSync(join(copy, 'clip', 'config.json')));
      const again = await loadModel(copy);
      const out2 = await again.forward({ input_ids: ref['input_ids']!, attention_mask: ref['attention_mask']!, pixel_values: ref['pixel_values']! }, { grad: false });
      assert.deepEqual(out2['logits']!.toNumbers(), (await model.forward({ input_ids: ref['input_ids']!, attention_mask: ref['attention_mask']!, pixel_values: ref['pixel_values']! }, { grad: false }))['logits']!.toNumbers());
      again.dispose();
      model.dispose();
    });
  }
});
