// Masks and method presets: selectors over names (globs, regexes, transformers-5 aliases), kinds,
// parts and module types; mask algebra; and, for every preset on the tiny ViT in the HF and timm
// layouts, trainable counts equal to what PyTorch + peft count for the same model and method
// (scripts/python/peft_reference.py `counts`: presets written the way PyTorch users write them,
// LoRA through peft's get_peft_model and get_nb_trainable_parameters).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { createModel, loadModel, type Model } from '../../lib/models/index.ts';
import {
  applyMethod, definePreset, Mask, MethodError, resolveMethod, select, selectionContext, trainableReport, type MethodSpec,
} from '../../lib/peft/index.ts';
import { manualSeed } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture, runPythonJson } from '../helpers/python.ts';

type Counts = Record<string, { trainable: number; all: number }>;

let dir: string;
let reference: Record<string, Counts>;
let initReference: number[][];
before(() => {
  dir = cachedFixture('peft', 'make_peft_fixtures.py', [], { dependsOn: ['peft_reference.py', 'timm_vit_reference.py'] });
  const file = join(mkdtempSync(join(tmpdir(), 'medtune-presets-')), 'batch.json');
  writeFileSync(file, JSON.stringify([
    { cmd: 'counts', model: join(dir, 'vit') },
    { cmd: 'counts', model: join(dir, 'timm') },
    { cmd: 'lora_init', seed: 7, shapes: [[4, 16], [4, 16], [4, 16], [4, 16]] },
  ]));
  const out = runPythonJson<unknown[]>('peft_reference.py', ['batch', file]);
  reference = { [join(dir, 'vit')]: out[0] as Counts, [join(dir, 'timm')]: out[1] as Counts };
  initReference = out[2] as number[][];
});

async function countsFor(modelDir: string, spec: MethodSpec): Promise<{ trainable: number; all: number; peftAll: number; line: string }> {
  const model = await loadModel(modelDir);
  try {
    const applied = await applyMethod(model, spec);
    const r = trainableReport(model, applied);
    return { trainable: r.trainable, all: r.total, peftAll: r.peft.total, line: r.peftLine };
  } finally {
    model.dispose();
  }
}

describe('preset trainable counts equal PyTorch + peft', () => {
  for (const layout of ['vit', 'timm'] as const) {
    it(`${layout === 'vit' ? 'HF ViTForImageClassification' : 'timm / MAE ViT'}: ln, ffn, attn, bitfit, full, lora (+ modules_to_save), dora`, async () => {
      const modelDir = join(dir, layout);
      const ref = reference[modelDir]!;
      for (const preset of ['ln', 'ffn', 'attn', 'bitfit', 'full']) {
        const got = await countsFor(modelDir, { method: preset });
        assert.deepEqual({ trainable: got.trainable, all: got.all }, ref[preset], `${layout} ${preset}`);
      }
      const targets = layout === 'vit' ? 'q_proj,v_proj' : 'qkv';
      const extra = layout === 'vit' ? 'classifier' : 'head,fc_norm';
      const lora = await countsFor(modelDir, { method: 'lora', lora: { r: 4, alpha: 8, targets } });
      assert.deepEqual({ trainable: lora.trainable, all: lora.peftAll }, ref['lora'], `${layout} lora`);
      const withExtra = await countsFor(modelDir, { method: 'lora', lora: { r: 4, alpha: 8, targets }, trainExtra: extra });
      assert.deepEqual({ trainable: withExtra.trainable, all: withExtra.peftAll }, ref['lora_extra'], `${layout} lora + modules_to_save`);
      const r = ref['lora_extra']!;
      assert.equal(withExtra.line, `trainable params: ${r.trainable.toLocaleString('en-US')} || all params: ${r.all.toLocaleString('en-US')} || trainable%: ${((100 * r.trainable) / r.all).toFixed(4)}`);
      const dora = await countsFor(modelDir, { method: 'lora', lora: { r: 2, alpha: 4, targets, dora: true } });
      assert.deepEqual({ trainable: dora.trainable, all: dora.peftAll }, ref['dora'], `${layout} dora`);
    });
  }

  it("timm qkv[q,v]: loralib MergedLinear's count (a rank-r pair per enabled third)", async () => {
    const model = await loadModel(join(dir, 'timm'));
    const applied = await applyMethod(model, { method: 'lora', lora: { r: 4, alpha: 32 }, trainExtra: 'head,fc_norm' });
    assert.deepEqual(applied.adapters.map((a) => [a.path, a.slices]), [['blocks.0.attn.qkv', [[0, 32], [64, 32]]], ['blocks.1.attn.qkv', [[0, 32], [64, 32]]]]);
    // per block: A (2 r, 32) + B (2 * 32, r); head 3 x 32 + 3; fc_norm 2 x 32
    assert.equal(trainableReport(model, applied).trainable, 2 * (2 * 4 * 32 + 2 * 32 * 4) + 99 + 64);
    assert.deepEqual(applied.modulesToSave, ['fc_norm', 'head']);
    model.dispose();
  });
});

const vitConfig = {
  model_type: 'vit', architectures: ['ViTForImageClassification'], hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2,
  intermediate_size: 32, image_size: 8, patch_size: 4, num_labels: 3,
};

describe('masks and selectors', () => {
  let model: Model;
  before(async () => {
    model = await createModel(vitConfig, { seed: 1 });
  });

  const names = (sel: Parameters<typeof Mask.select>[1]) => [...Mask.select(model, sel).names].sort();

  it('globs match whole names or module prefixes; re: is a full match; transformers-5 names work too', () => {
    assert.deepEqual(names({ name: 'classifier' }), ['classifier.bias', 'classifier.weight']);
    assert.deepEqual(names({ name: '*.layernorm.*' }), ['vit.layernorm.bias', 'vit.layernorm.weight']);
    assert.deepEqual(names({ name: 're:vit\\.encoder\\.layer\\.1\\..*query\\.bias' }), ['vit.encoder.layer.1.attention.attention.query.bias']);
    assert.deepEqual(names({ name: 're:query' }), [], 'a regex must match the whole name (or a whole module path)');
    // transformers 5 calls the same tensor vit.layers.1.attention.q_proj.bias
    assert.deepEqual(names({ name: 'vit.layers.1.attention.q_proj.bias' }), ['vit.encoder.layer.1.attention.attention.query.bias']);
    assert.deepEqual(names({ name: '*.mlp.fc2' }), ['vit.encoder.layer.0.output.dense.bias', 'vit.encoder.layer.0.output.dense.weight', 'vit.encoder.layer.1.output.dense.bias', 'vit.encoder.layer.1.output.dense.weight']);
  });

  it('kind, part, module type and leaf selectors; union, minus, intersect', () => {
    const norms = Mask.select(model, select.kind('norm').selector);
    assert.equal(norms.size, 10, '2 x 2 block norms + final layernorm, weight and bias');
    assert.deepEqual(norms.names, Mask.select(model, { module: 'LayerNorm' }).names);
    const biases = Mask.select(model, { leaf: 'bias' });
    const normWeights = norms.minus(biases);
    assert.equal(normWeights.size, 5);
    assert.ok([...normWeights.names].every((n) => n.endsWith('.weight')));
    assert.deepEqual(norms.intersect(biases).union(normWeights).names, norms.names);
    const headOrNorm = Mask.select(model, select.kind('head').or(select.kind('norm')).selector);
    assert.equal(headOrNorm.size, 12);
    assert.deepEqual(names(select.part('head').minus(select.leaf('bias')).selector), ['classifier.weight']);
    assert.throws(() => Mask.select(model, { colour: 'red' } as never), /unknown selector key 'colour'/);
  });

  it('apply() makes exactly the mask trainable (or switches only its members)', () => {
    const ln = Mask.select(model, { kind: 'norm' });
    ln.apply(model);
    const trainable = model.parameters().filter((p) => p.requiresGrad).map((p) => p.name);
    assert.deepEqual(new Set(trainable), ln.names);
    Mask.select(model, { name: 'classifier' }).apply(model, { exclusive: false });
    assert.equal(model.parameters().filter((p) => p.requiresGrad).length, ln.size + 2);
    ln.apply(model, { flag: false, exclusive: false });
    assert.deepEqual(model.parameters().filter((p) => p.requiresGrad).map((p) => p.name), ['classifier.weight', 'classifier.bias']);
  });

  it('a user-defined preset is a few lines of data; scopes restrict it; the report groups by part and kind', async () => {
    definePreset({ name: 'ln+head', description: 'norms and the classifier', train: select.kind('norm').or(select.kind('head')) });
    const m = await createModel(vitConfig, { seed: 2 });
    const applied = await applyMethod(m, { method: 'ln+head' });
    assert.equal(applied.trainable.length, 12);
    const report = trainableReport(m, applied);
    const head = report.byPart.find((g) => g.group === 'head')!;
    assert.deepEqual(head, { group: 'head', trainable: 51, total: 51 });
    assert.equal(report.byKind.find((g) => g.group === 'norm')!.trainable, 160);
    assert.match(report.text, /trainable params: 211 \|\| all params: 5,411 \|\| trainable%: 3\.8995/);
    const scoped = await createModel(vitConfig, { seed: 2 });
    const vision = await applyMethod(scoped, { method: 'ln+head', scope: 'vision' });
    assert.equal(vision.trainable.length, 10, 'the classifier is part "head", outside the vision scope');
    m.dispose();
    scoped.dispose();
  });

  it('errors name what is wrong', async () => {
    assert.throws(() => resolveMethod({ method: 'prefix' }), (e: Error) => e instanceof MethodError && /unknown method 'prefix' \(known: ln, ffn, attn, bitfit, full, lora/.test(e.message));
    assert.throws(() => resolveMethod({ method: 'ln', scope: 'audio' }), /unknown scope 'audio' \(known: all, vision, language, projector, text, decoder\)/);
    assert.throws(() => resolveMethod({ method: 'ln', lora: { r: 4 } }), /LoRA settings \(r\) apply to adapter methods/);
    assert.throws(() => resolveMethod({ method: 'lora', lora: { targets: 'qkv[q,x]' } }), /slices of a fused qkv are written/);
    const m = await createModel(vitConfig, { seed: 3 });
    await assert.rejects(applyMethod(m, { method: 'ln', scope: 'language' }), /scope 'language' selects no parameter of this ViTForImageClassification model \(its parts: vision, head\)/);
    await assert.rejects(applyMethod(m, { method: 'ln', trainExtra: 'clasifier' }), /--train-extra 'clasifier' matches no parameter/);
    await assert.rejects(applyMethod(m, { method: 'lora', lora: { targets: 'q_proj,wq' } }), /LoRA target 'wq' matches no Linear layer in scope/);
    await assert.rejects(applyMethod(m, { method: 'lora', trainExtra: 'classifier.bias' }), /selects 'classifier.bias' but not 'classifier.weight'; .* modules_to_save/);
    await assert.rejects(applyMethod(m, { method: 'lora', lora: { targets: 'intermediate.dense[q,v]' } }), /'vit.encoder.layer.0.intermediate.dense' has 32 output features, not a fused q\|k\|v projection/);
    m.dispose();
  });

  it('a freshly initialised head left frozen is reported', async () => {
    const m = await loadModel(join(dir, 'vit'));
    // the fixture has its classifier; simulate a backbone checkpoint by asking the report directly
    const applied = await applyMethod(m, { method: 'ln' });
    assert.deepEqual(applied.warnings, []);
    assert.equal(selectionContext(m).names.toTransformers5('vit.encoder.layer.0.intermediate.dense.weight'), 'vit.layers.0.mlp.fc1.weight');
    m.dispose();
  });
});

describe('LoRA initialisation and dtypes', () => {
  it('A is kaiming_uniform_(a=sqrt(5)) drawn as torch draws it after the same manual_seed (one adapter after another), B is zero', async () => {
    const model = await createModel(vitConfig, { seed: 1 });
    manualSeed(7);
    const applied = await applyMethod(model, { method: 'lora', lora: { r: 4, alpha: 8, targets: 'query,value' } });
    assert.equal(applied.adapters.length, 4);
    applied.adapters.forEach((a, i) => {
      const A = model.parameter(`${a.path}.lora_A.weight`);
      const B = model.parameter(`${a.path}.lora_B.weight`);
      assertClose(A.toNumbers(), initReference[i]!, { atol: 0, rtol: 0, message: `${a.path} A` });
      assert.ok(B.toNumbers().every((v) => v === 0));
      A.dispose();
      B.dispose();
    });
    model.dispose();
  });

  it('a bf16 model keeps its adapters in float32 (peft autocast_adapter_dtype) and outputs bf16', async () => {
    const model = await createModel(vitConfig, { seed: 1, dtype: 'bf16' });
    const applied = await applyMethod(model, { method: 'lora', lora: { r: 4, dora: true } });
    const adapterParams = model.parameters().filter((p) => !p.persistent);
    assert.deepEqual([...new Set(adapterParams.map((p) => p.dtype))], ['float32']);
    assert.equal(adapterParams.length, 3 * applied.adapters.length, 'lora_A, lora_B, lora_magnitude_vector');
    const { randn } = await import('../../lib/torch/index.ts');
    const out = await model.forward({ pixel_values: randn([1, 3, 8, 8]).to('bfloat16') }, { grad: false });
    assert.equal(out['logits']!.dtype, 'bfloat16');
    model.dispose();
  });

  it('--init-adapter fixes the LoRA settings; contradicting them is an Error', () => {
    const plan = resolveMethod({ method: 'lora', lora: { initAdapter: join(dir, 'vit_dora') } });
    assert.deepEqual([plan.lora!.r, plan.lora!.alpha, plan.lora!.dora, plan.lora!.rankPattern], [2, 4, true, { 'layers\\.1\\.attention\\.v_proj': 4 }]);
    assert.throws(() => resolveMethod({ method: 'lora', lora: { initAdapter: join(dir, 'vit_dora'), r: 8 } }), /was trained with r 2, but 8 was asked for/);
    assert.throws(() => resolveMethod({ method: 'lora', lora: { initAdapter: join(dir, 'vit_dora'), targets: 'query' } }), /--lora-targets cannot be combined with --init-adapter/);
    const withExtra = resolveMethod({ method: 'lora', lora: { initAdapter: join(dir, 'vit_lora') } });
    assert.deepEqual(withExtra.trainExtra, ['classifier'], "the adapter's modules_to_save keep training");
    assert.deepEqual(resolveMethod({ method: 'lora', trainExtra: 'vit.layernorm', lora: { initAdapter: join(dir, 'vit_lora') } }).trainExtra, ['vit.layernorm', 'classifier']);
    assert.throws(() => resolveMethod({ method: 'lora', scope: 'vision', lora: { initAdapter: join(dir, 'vit_lora') } }), /--scope cannot be combined with --init-adapter/);
  });
});
