// LoRA, DoRA and rsLoRA adapters against peft 0.21 (transformers 5.18): adapters written by peft
// load here and give peft's logits, merged and unmerged; adapters written here load in PyTorch with
// PeftModel.from_pretrained and give ours; transformers 4.x key names are read; a sliced LoRA on
// timm's fused qkv (loralib's MergedLinear) is written as the equivalent peft adapter.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadModel, loadSafetensors, readSafetensorsHeader, type Model } from '../../lib/models/index.ts';
import {
  ADAPTER_CONFIG_NAME, applyMethod, loadAdapter, mergeAdapters, METHOD_FILE, saveTrainedOutput, TRAINED_WEIGHTS_NAME, unmergeAdapters,
} from '../../lib/peft/index.ts';
import { noGrad, randn, type Tensor } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture, runPython } from '../helpers/python.ts';

let dir: string;
let inputs: Record<string, Tensor>;
const tmp = mkdtempSync(join(tmpdir(), 'medtune-peft-'));

before(async () => {
  dir = cachedFixture('peft', 'make_peft_fixtures.py', [], { dependsOn: ['peft_reference.py', 'timm_vit_reference.py'] });
  inputs = (await loadSafetensors(join(dir, 'inputs.safetensors'))).tensors;
});

async function logits(model: Model): Promise<Float32Array> {
  const out = await model.forward({ pixel_values: inputs['pixel_values']! }, { grad: false });
  return out['logits']!.toTypedArray() as Float32Array;
}

async function reference(name: string): Promise<Record<string, Tensor>> {
  return (await loadSafetensors(join(dir, `${name}.reference.safetensors`))).tensors;
}

/** Runs PeftModel.from_pretrained on each job in one Python process. */
function peftForward(jobs: { model: string; adapter: string; out: string; merged?: string }[]): void {
  const file = join(tmp, `jobs-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(jobs.map((j) => ({ ...j, inputs: join(dir, 'inputs.safetensors') }))));
  runPython('peft_reference.py', ['forward', file]);
}

const TOL = { atol: 1e-5, rtol: 1e-5 };

describe('adapters written by peft load here', () => {
  for (const name of ['vit_lora', 'vit_dora', 'vit_rslora']) {
    it(`${name}: same logits as peft, merged and unmerged`, async () => {
      const ref = await reference(name);
      const model = await loadModel(join(dir, 'vit'));
      const base = await logits(model);
      const applied = await loadAdapter(model, join(dir, name));
      assert.ok(applied.adapters.length >= 4);
      assert.ok(model.parameters().every((p) => !p.requiresGrad), 'a loaded adapter is for inference (PeftModel.from_pretrained, is_trainable=False)');
      const withAdapter = await logits(model);
      assertClose(withAdapter, ref['logits']!.toTypedArray(), { ...TOL, message: `${name} logits` });
      assert.ok(Math.max(...withAdapter.map((v, i) => Math.abs(v - base[i]!))) > 1e-3, 'the adapter changes the output');
      mergeAdapters(model, applied);
      assertClose(await logits(model), ref['merged_logits']!.toTypedArray(), { ...TOL, message: `${name} merged logits` });
      unmergeAdapters(model, applied);
      assertClose(await logits(model), withAdapter, { atol: 1e-5, rtol: 1e-5, message: `${name} unmerged` });
      model.dispose();
    });
  }

  it('DoRA: rank_pattern / alpha_pattern give that layer its own rank and scaling', async () => {
    const model = await loadModel(join(dir, 'vit'));
    const applied = await loadAdapter(model, join(dir, 'vit_dora'));
    const v1 = applied.adapters.find((a) => a.path === 'vit.encoder.layer.1.attention.attention.value')!;
    assert.deepEqual({ r: v1.r, alpha: v1.alpha, dora: v1.dora }, { r: 4, alpha: 16, dora: true });
    const q0 = applied.adapters.find((a) => a.path === 'vit.encoder.layer.0.attention.attention.query')!;
    assert.deepEqual({ r: q0.r, alpha: q0.alpha }, { r: 2, alpha: 4 });
    model.dispose();
  });

  it('transformers 4.x names (vit.encoder.layer.N.attention.attention.query, target_modules query/value) read the same', async () => {
    const ref = await reference('vit_lora');
    const model = await loadModel(join(dir, 'vit'));
    const applied = await loadAdapter(model, join(dir, 'vit_lora_v4'));
    assert.deepEqual(applied.modulesToSave, ['classifier']);
    assertClose(await logits(model), ref['logits']!.toTypedArray(), { ...TOL, message: 'v4-named adapter' });
    model.dispose();
  });

  it('bad adapter directories are Errors naming the file and the cause', async () => {
    const model = await loadModel(join(dir, 'vit'));
    const bad = join(tmp, 'bad');
    const { mkdirSync, copyFileSync } = await import('node:fs');
    mkdirSync(bad, { recursive: true });
    await assert.rejects(loadAdapter(model, join(tmp, 'missing')), /no such adapter directory/);
    writeFileSync(join(bad, ADAPTER_CONFIG_NAME), '{"peft_type": "IA3"}');
    await assert.rejects(loadAdapter(model, bad), /adapter_config.json: peft_type is "IA3"; medtune reads LoRA/);
    writeFileSync(join(bad, ADAPTER_CONFIG_NAME), readFileSync(join(dir, 'vit_lora', ADAPTER_CONFIG_NAME), 'utf8').replace('"bias": "none"', '"bias": "all"'));
    await assert.rejects(loadAdapter(model, bad), /"bias": "all" is not supported/);
    copyFileSync(join(dir, 'vit_lora', ADAPTER_CONFIG_NAME), join(bad, ADAPTER_CONFIG_NAME));
    await assert.rejects(loadAdapter(model, bad), /adapter_model.safetensors: no such file/);
    copyFileSync(join(dir, 'timm', 'model.safetensors'), join(bad, 'adapter_model.safetensors'));
    await assert.rejects(loadAdapter(model, bad), /tensor '[\w.]+' names parameter '[\w.]+', which this ViTForImageClassification model does not have/);
    writeFileSync(join(bad, 'adapter_model.safetensors'), 'not a safetensors file');
    await assert.rejects(loadAdapter(model, bad), (e: Error & { code?: string }) => e.code === 'MEDTUNE_BAD_CHECKPOINT' && e.message.includes('adapter_model.safetensors'));
    assert.equal(model.parameters().filter((p) => !p.persistent).length, 0, 'a failed load attaches nothing');
    model.dispose();
  });
});

describe('adapters written here load in PyTorch', () => {
  it('LoRA + modules_to_save and DoRA on HF ViT: PeftModel.from_pretrained gives our logits, merge_and_unload too', async () => {
    const jobs: { model: string; adapter: string; out: string; merged?: string }[] = [];
    const ours: Record<string, Float32Array> = {};
    for (const [name, spec] of [
      ['lora', { method: 'lora', trainExtra: 'classifier', lora: { r: 4, alpha: 16, targets: 'query,value' } }],
      ['dora', { method: 'lora', lora: { r: 2, alpha: 4, dora: true, targets: 'q_proj,k_proj,v_proj,o_proj', rslora: true } }],
      ['scoped', { method: 'lora', lora: { r: 2, alpha: 4, targets: 're:.*layer\\.1\\..*(query|value)' } }],
    ] as const) {
      const model = await loadModel(join(dir, 'vit'));
      const applied = await applyMethod(model, spec);
      // stand-in for training: move every trainable tensor
      noGrad(() => {
        for (const n of applied.trainable) {
          const p = model.parameter(n);
          p.add_(randn(p.shape).mul(0.05));
          p.dispose();
        }
      });
      ours[name] = await logits(model);
      const out = join(tmp, `ours-${name}`);
      const files = await saveTrainedOutput(model, applied, out, { baseModel: join(dir, 'vit') });
      assert.deepEqual(files, [ADAPTER_CONFIG_NAME, 'adapter_model.safetensors']);
      assert.ok(existsSync(join(out, METHOD_FILE)));
      jobs.push({ model: join(dir, 'vit'), adapter: out, out: join(tmp, `ours-${name}.out.safetensors`), merged: join(tmp, `ours-${name}-merged`) });
      model.dispose();
    }
    const keys = readSafetensorsHeader(join(tmp, 'ours-lora', 'adapter_model.safetensors')).tensors.map((t) => t.name).sort();
    assert.ok(keys.includes('base_model.model.vit.layers.0.attention.q_proj.lora_A.weight'), 'transformers-5 module names, as peft 0.21 writes');
    assert.ok(keys.includes('base_model.model.classifier.weight'), 'modules_to_save as peft stores them');
    const config = JSON.parse(readFileSync(join(tmp, 'ours-lora', ADAPTER_CONFIG_NAME), 'utf8'));
    assert.deepEqual([config.target_modules, config.modules_to_save, config.r, config.lora_alpha], [['q_proj', 'v_proj'], ['classifier'], 4, 16]);
    // a scope peft's name list cannot express becomes a regex that selects exactly those modules
    assert.equal(JSON.parse(readFileSync(join(tmp, 'ours-scoped', ADAPTER_CONFIG_NAME), 'utf8')).target_modules,
      '(?:vit\\.layers\\.1\\.attention\\.q_proj|vit\\.layers\\.1\\.attention\\.v_proj)');
    peftForward(jobs);
    for (const [name, job] of Object.entries({ lora: jobs[0]!, dora: jobs[1]!, scoped: jobs[2]! })) {
      const out = (await loadSafetensors(job.out)).tensors;
      assertClose(out['logits']!.toTypedArray(), ours[name]!, { ...TOL, message: `peft logits of our ${name} adapter` });
      assertClose(out['merged_logits']!.toTypedArray(), ours[name]!, { atol: 1e-4, rtol: 1e-4, message: `peft merged logits of our ${name} adapter` });
    }
    const scopedModules = JSON.parse(readSafetensorsHeader(jobs[2]!.out).metadata['lora_modules']!) as string[];
    assert.deepEqual(scopedModules, ['base_model.model.vit.layers.1.attention.q_proj.lora_A.default', 'base_model.model.vit.layers.1.attention.v_proj.lora_A.default']);
  });

  it("timm qkv[q,v] (MergedLinear) is written as peft's equivalent adapter and read back compact", async () => {
    const model = await loadModel(join(dir, 'timm'));
    const applied = await applyMethod(model, { method: 'lora', lora: { r: 4, alpha: 32 }, trainExtra: 'head,fc_norm' });
    noGrad(() => {
      for (const n of applied.trainable) {
        const p = model.parameter(n);
        p.add_(randn(p.shape).mul(0.05));
        p.dispose();
      }
    });
    const ours = await logits(model);
    const out = join(tmp, 'ours-timm');
    await saveTrainedOutput(model, applied, out);
    const config = JSON.parse(readFileSync(join(out, ADAPTER_CONFIG_NAME), 'utf8'));
    assert.deepEqual(config.target_modules, ['qkv']);
    assert.deepEqual(config.rank_pattern, { 'blocks\\.0\\.attn\\.qkv': 8, 'blocks\\.1\\.attn\\.qkv': 8 });
    assert.deepEqual(config.alpha_pattern, { 'blocks\\.0\\.attn\\.qkv': 64, 'blocks\\.1\\.attn\\.qkv': 64 });
    assert.equal(config.auto_mapping, null);
    peftForward([{ model: join(dir, 'timm'), adapter: out, out: join(tmp, 'ours-timm.out.safetensors') }]);
    const peftOut = (await loadSafetensors(join(tmp, 'ours-timm.out.safetensors'))).tensors;
    assertClose(peftOut['logits']!.toTypedArray(), ours, { ...TOL, message: 'peft logits of the expanded MergedLinear adapter' });

    const again = await loadModel(join(dir, 'timm'));
    const back = await loadAdapter(again, out);
    assert.deepEqual(back.adapters.map((a) => [a.r, a.slices]), [[4, [[0, 32], [64, 32]]], [4, [[0, 32], [64, 32]]]]);
    assert.equal(again.parameters().find((p) => p.name === 'blocks.0.attn.qkv.lora_B.weight')!.shape.join(','), '64,4');
    assertClose(await logits(again), ours, { ...TOL, message: 'read back compact' });
    model.dispose();
    again.dispose();
  });

  it('non-LoRA methods save only the trained tensors under checkpoint names, and load back', async () => {
    const model = await loadModel(join(dir, 'vit'));
    const applied = await applyMethod(model, { method: 'ln', trainExtra: 'classifier' });
    noGrad(() => {
      for (const n of applied.trainable) {
        const p = model.parameter(n);
        p.add_(randn(p.shape).mul(0.05));
        p.dispose();
      }
    });
    const ours = await logits(model);
    const out = join(tmp, 'ours-ln');
    assert.deepEqual(await saveTrainedOutput(model, applied, out, { baseModel: 'hub/vit-tiny' }), [TRAINED_WEIGHTS_NAME]);
    const header = readSafetensorsHeader(join(out, TRAINED_WEIGHTS_NAME));
    assert.deepEqual(header.tensors.map((t) => t.name).sort(), [...applied.trainable].sort());
    assert.equal(header.metadata['method'], 'ln');
    const method = JSON.parse(readFileSync(join(out, METHOD_FILE), 'utf8'));
    assert.deepEqual([method.method, method.base_model, method.architecture], ['ln', 'hub/vit-tiny', 'ViTForImageClassification']);
    assert.ok(!existsSync(join(out, ADAPTER_CONFIG_NAME)));
    const fresh = await loadModel(join(dir, 'vit'));
    await loadAdapter(fresh, out);
    assertClose(await logits(fresh), ours, { atol: 0, rtol: 0, message: 'reloaded trained tensors' });
    model.dispose();
    fresh.dispose();
  });
});

describe('adapter behaviour', () => {
  it('LoRA dropout acts in training mode only; merge refuses nothing and unmerge restores the weight', async () => {
    const model = await loadModel(join(dir, 'vit'));
    const applied = await applyMethod(model, { method: 'lora', lora: { r: 4, alpha: 8, dropout: 0.5, targets: 'query,value' } });
    noGrad(() => {
      for (const n of applied.trainable.filter((n) => n.endsWith('lora_B.weight'))) {
        const p = model.parameter(n);
        p.add_(randn(p.shape));
        p.dispose();
      }
    });
    const w = model.parameter('vit.encoder.layer.0.attention.attention.query.weight');
    const before = w.toNumbers();
    const evalA = await logits(model);
    assert.deepEqual(await logits(model), evalA, 'eval mode: deterministic');
    model.train();
    const trainA = await logits(model);
    const trainB = await logits(model);
    assert.notDeepEqual(trainA, trainB, 'training mode: dropout on the LoRA input');
    model.eval();
    mergeAdapters(model, applied);
    assert.ok(Math.max(...w.toNumbers().map((v, i) => Math.abs(v - before[i]!))) > 1e-3, 'merged into the weight');
    assertClose(await logits(model), evalA, { ...TOL, message: 'merged logits' });
    unmergeAdapters(model, applied);
    assertClose(w.toNumbers(), before, { atol: 1e-6, rtol: 0, message: 'unmerged weight' });
    w.dispose();
    model.dispose();
  });

  it('a sliced adapter whose zero blocks were changed is refused, naming the tensor', async () => {
    const out = join(tmp, 'ours-timm');
    const tampered = join(tmp, 'tampered');
    const { cpSync } = await import('node:fs');
    cpSync(out, tampered, { recursive: true });
    const { saveSafetensors } = await import('../../lib/models/index.ts');
    const weights = (await loadSafetensors(join(tampered, 'adapter_model.safetensors'))).tensors;
    const b = weights['base_model.model.blocks.0.attn.qkv.lora_B.weight']!;
    noGrad(() => b.narrow(0, 40, 1).fill_(1)); // a k row: outside every slice
    await saveSafetensors(join(tampered, 'adapter_model.safetensors'), weights);
    const model = await loadModel(join(dir, 'timm'));
    await assert.rejects(loadAdapter(model, tampered), /'blocks\.0\.attn\.qkv\.lora_B\.weight' is not the block form of a sliced LoRA/);
    model.dispose();
  });
});
