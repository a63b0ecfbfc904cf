// ViT in the HF and timm/MAE layouts against PyTorch: transformers' ViTForImageClassification /
// ViTModel, and scripts/python/timm_vit_reference.py for the timm equations (timm itself is not
// installable in the reference environment). Tiny checkpoints from make_vit_fixtures.py.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadModel, loadSafetensors, readSafetensorsHeader, type Model, type VitSpec } from '../../lib/models/index.ts';
import type { Tensor } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture } from '../helpers/python.ts';

let dir: string;

async function reference(name: string): Promise<Record<string, Tensor>> {
  return (await loadSafetensors(join(dir, `${name}.reference.safetensors`))).tensors;
}

async function run(model: Model, batch: Record<string, Tensor>, opts: { outputHiddenStates?: boolean } = {}): Promise<Record<string, Tensor>> {
  return model.forward(batch, { ...opts, grad: false });
}

describe('ViT parity with PyTorch', () => {
  before(() => {
    dir = cachedFixture('vit', 'make_vit_fixtures.py', [], { dependsOn: ['timm_vit_reference.py'] });
  });

  it('HF ViTForImageClassification: logits, hidden states and multi-label BCE loss within 1e-4', async () => {
    const ref = await reference('hf_classifier');
    const model = await loadModel(join(dir, 'hf_classifier'));
    assert.equal(model.architecture, 'ViTForImageClassification');
    const out = await run(model, { pixel_values: ref['pixel_values']!, labels: ref['labels']! }, { outputHiddenStates: true });
    assertClose(out['logits']!.toTypedArray(), ref['logits']!.toTypedArray(), { atol: 1e-4, rtol: 0, message: 'logits' });
    assertClose(out['loss']!.item(), ref['loss']!.item(), { atol: 1e-5, rtol: 0, message: 'loss' });
    for (let i = 0; i <= 2; i++) {
      assertClose(out[`hidden_states.${i}`]!.toTypedArray(), ref[`hidden_states.${i}`]!.toTypedArray(), { atol: 1e-4, rtol: 0, message: `hidden_states.${i}` });
    }
    const names = model.parameters().map((p) => p.name).sort();
    const keys = readSafetensorsHeader(join(dir, 'hf_classifier', 'model.safetensors')).tensors.map((t) => t.name).sort();
    assert.deepEqual(names, keys, 'parameter names are the checkpoint keys');
    assert.deepEqual(model.loadReport, { unexpected: [], initialized: [] });
    model.dispose();
  });

  it('HF ViTModel: last_hidden_state and the pooler (dense + tanh) within 1e-4', async () => {
    const ref = await reference('hf_model');
    const model = await loadModel(join(dir, 'hf_model'));
    assert.equal(model.architecture, 'ViTModel');
    const out = await run(model, { pixel_values: ref['pixel_values']! });
    assert.equal(out['logits'], undefined, 'a backbone has no logits');
    assertClose(out['last_hidden_state']!.toTypedArray(), ref['last_hidden_state']!.toTypedArray(), { atol: 1e-4, rtol: 0 });
    assertClose(out['pooler_output']!.toTypedArray(), ref['pooler_output']!.toTypedArray(), { atol: 1e-4, rtol: 0 });
    assert.ok(model.parameters().some((p) => p.name === 'pooler.dense.weight'));
    model.dispose();
  });

  it('a ViTModel checkpoint loaded as a classifier gets a fresh head, reported', async () => {
    const ref = await reference('hf_model');
    const { readConfigFile } = await import('../../lib/models/index.ts');
    const config = readConfigFile(join(dir, 'hf_model', 'config.json'));
    const { mkdtempSync, writeFileSync, symlinkSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const tmp = mkdtempSync(join(tmpdir(), 'medtune-vit-'));
    writeFileSync(join(tmp, 'config.json'), JSON.stringify({ ...config, architectures: ['ViTForImageClassification'], num_labels: 5 }));
    symlinkSync(join(dir, 'hf_model', 'model.safetensors'), join(tmp, 'model.safetensors'));
    const model = await loadModel(tmp, { seed: 3 });
    assert.deepEqual(model.loadReport.initialized, ['classifier.bias', 'classifier.weight']);
    assert.equal(model.loadReport.unexpected.length, 0, 'the pooler is known and skipped, not unexpected');
    const out = await run(model, { pixel_values: ref['pixel_values']! });
    assert.deepEqual(out['logits']!.shape, [2, 5]);
    // The backbone is the checkpoint's: the CLS feature after the final layernorm matches.
    assertClose(out['last_hidden_state']!.toTypedArray(), ref['last_hidden_state']!.toTypedArray(), { atol: 1e-4, rtol: 0 });
    model.dispose();
  });

  it('a sharded checkpoint (model.safetensors.index.json) loads to the same logits', async () => {
    const ref = await reference('hf_sharded');
    const model = await loadModel(join(dir, 'hf_sharded'));
    const out = await run(model, { pixel_values: ref['pixel_values']! });
    assertClose(out['logits']!.toTypedArray(), ref['logits']!.toTypedArray(), { atol: 1e-4, rtol: 0 });
    model.dispose();
  });

  it('a bf16 checkpoint: as bf16 it matches transformers in bf16, converted to fp32 it matches transformers in fp32', async () => {
    const ref = await reference('hf_bf16');
    const bf16 = await loadModel(join(dir, 'hf_bf16'), { dtype: 'bf16' });
    assert.ok(bf16.parameters().every((p) => p.dtype === 'bfloat16'));
    const outBf16 = await run(bf16, { pixel_values: ref['pixel_values']! });
    assert.equal(outBf16['logits']!.dtype, 'bfloat16');
    assertClose(outBf16['logits']!.toTypedArray(), ref['logits_bf16']!.toTypedArray(), { atol: 3e-2, rtol: 0, message: 'bf16 logits' });
    const fp32 = await loadModel(join(dir, 'hf_bf16'), { dtype: 'float32' });
    const outFp32 = await run(fp32, { pixel_values: ref['pixel_values']! });
    assertClose(outFp32['logits']!.toTypedArray(), ref['logits_fp32']!.toTypedArray(), { atol: 1e-4, rtol: 0, message: 'fp32 logits' });
    bf16.dispose();
    fp32.dispose();
  });

  it('timm / MAE layout: global-average pooling, fc_norm, head and BCE loss within 1e-4', async () => {
    const ref = await reference('timm_mae');
    const model = await loadModel(join(dir, 'timm_mae'));
    const spec = model.spec as VitSpec;
    assert.equal(spec.layout, 'timm');
    assert.equal(spec.pooling, 'avg');
    assert.equal(spec.finalNorm, 'fc_norm');
    const out = await run(model, { pixel_values: ref['pixel_values']!, labels: ref['labels']! });
    assertClose(out['logits']!.toTypedArray(), ref['logits']!.toTypedArray(), { atol: 1e-4, rtol: 0, message: 'logits' });
    assertClose(out['pooler_output']!.toTypedArray(), ref['pooler_output']!.toTypedArray(), { atol: 1e-4, rtol: 0, message: 'pooled' });
    assertClose(out['last_hidden_state']!.toTypedArray(), ref['last_hidden_state']!.toTypedArray(), { atol: 1e-4, rtol: 0 });
    assertClose(out['loss']!.item(), ref['loss']!.item(), { atol: 1e-5, rtol: 0, message: 'loss' });
    const byName = new Map(model.parameters().map((p) => [p.name, p]));
    assert.equal(byName.get('blocks.0.attn.qkv.weight')?.kind, 'attention');
    assert.deepEqual(byName.get('blocks.0.attn.qkv.weight')?.shape, [96, 32]);
    assert.equal(byName.get('blocks.1.mlp.fc2.weight')?.kind, 'mlp');
    assert.equal(byName.get('fc_norm.weight')?.kind, 'norm');
    assert.equal(byName.get('fc_norm.weight')?.part, 'head');
    assert.equal(byName.get('head.weight')?.kind, 'head');
    assert.equal(byName.get('pos_embed')?.kind, 'position_embedding');
    assert.equal(byName.get('patch_embed.proj.weight')?.kind, 'patch_embedding');
    assert.equal(byName.has('norm.weight'), false, 'MAE fine-tuning replaces norm by fc_norm');
    model.dispose();
  });

  it('timm layout: token pooling, final norm, LayerScale, no qkv bias, softmax CE loss within 1e-4', async () => {
    const ref = await reference('timm_token');
    const model = await loadModel(join(dir, 'timm_token'));
    const out = await run(model, { pixel_values: ref['pixel_values']!, labels: ref['labels']! });
    assertClose(out['logits']!.toTypedArray(), ref['logits']!.toTypedArray(), { atol: 1e-4, rtol: 0, message: 'logits' });
    assertClose(out['last_hidden_state']!.toTypedArray(), ref['last_hidden_state']!.toTypedArray(), { atol: 1e-4, rtol: 0 });
    assertClose(out['loss']!.item(), ref['loss']!.item(), { atol: 1e-5, rtol: 0, message: 'loss' });
    const names = new Set(model.parameters().map((p) => p.name));
    assert.ok(names.has('blocks.0.ls1.gamma') && names.has('norm.weight') && !names.has('blocks.0.attn.qkv.bias'));
    model.dispose();
  });
});
