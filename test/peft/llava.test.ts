// PEFT on a llava-hf LLaVA (CLIP tower, LLaMA with GQA, projector) against transformers 5.18 +
// peft 0.21: trainable counts for every preset and scope; the transformers-5 names of every
// checkpoint key (transformers' own key conversion, for the 5.x-saved and the 4.x hub key forms);
// peft's adapter loads here and ours loads in peft with the same logits; and 5 AdamW steps of LN-,
// FFN-, attention-tuning, full fine-tuning and LoRA (from the same peft adapter file) with
// per-step losses within 1e-4 relative.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadModel, loadSafetensors, readSafetensorsHeader, type Model } from '../../lib/models/index.ts';
import { applyMethod, HfNames, loadAdapter, type MethodSpec, saveTrainedOutput, trainableReport } from '../../lib/peft/index.ts';
import { noGrad, randn, type Tensor } from '../../lib/torch/index.ts';
import { createOptimizer } from '../../lib/train/optimizer.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture, runPython, runPythonJson } from '../helpers/python.ts';

let dir: string;
let batch: Record<string, Tensor>;
const tmp = mkdtempSync(join(tmpdir(), 'medtune-peft-llava-'));
const STEPS = 5;
const LR = 1e-3;
let cases: { spec: MethodSpec; python: Record<string, string> }[];
// The PyTorch side in one interpreter: counts, transformers-5 names of both key forms, training.
let ref: {
  counts: Record<string, { trainable: number; all: number }>;
  names: Record<string, Record<string, string>>;
  train: { losses: number[]; trainable: number }[];
};

before(async () => {
  dir = cachedFixture('peft-llava', 'make_peft_llava_fixtures.py', [], { dependsOn: ['peft_reference.py', 'timm_vit_reference.py'] });
  batch = (await loadSafetensors(join(dir, 'llava_batch.safetensors'))).tensors;
  cases = [
    { spec: { method: 'ln' }, python: { method: 'ln' } },
    { spec: { method: 'ffn' }, python: { method: 'ffn' } },
    { spec: { method: 'attn' }, python: { method: 'attn' } },
    { spec: { method: 'full' }, python: { method: 'full' } },
    { spec: { method: 'lora', lora: { initAdapter: join(dir, 'llava_lora') } }, python: { method: 'lora', adapter: join(dir, 'llava_lora') } },
  ];
  const jobs = [
    { cmd: 'counts', model: join(dir, 'llava') },
    { cmd: 'names', model: join(dir, 'llava') },
    { cmd: 'names', model: join(dir, 'llava_v4') },
    ...cases.map((c) => ({ cmd: 'train', model: join(dir, 'llava'), inputs: join(dir, 'llava_batch.safetensors'), steps: STEPS, lr: LR, ...c.python })),
  ];
  const file = join(tmp, 'batch.json');
  writeFileSync(file, JSON.stringify(jobs));
  const out = runPythonJson<unknown[]>('peft_reference.py', ['batch', file]);
  ref = {
    counts: out[0] as typeof ref.counts,
    names: { [join(dir, 'llava')]: out[1] as Record<string, string>, [join(dir, 'llava_v4')]: out[2] as Record<string, string> },
    train: out.slice(3) as typeof ref.train,
  };
});

/** Logits at the real (attention_mask 1) positions: what padding leaves at the rest is no result. */
function realRows(logits: Float32Array): number[] {
  const mask = batch['attention_mask']!.toNumbers();
  const vocab = logits.length / mask.length;
  return mask.flatMap((m, i) => (m ? Array.from(logits.subarray(i * vocab, (i + 1) * vocab)) : []));
}

async function logits(model: Model): Promise<number[]> {
  const { labels, ...inputs } = batch;
  void labels;
  const out = await model.forward(inputs, { grad: false });
  return realRows(out['logits']!.toTypedArray() as Float32Array);
}

describe('LLaVA (llava-hf)', () => {
  it('trainable counts equal PyTorch + peft for every preset; scopes split vision / language / projector', async () => {
    const counts = ref.counts;
    const specs: [string, MethodSpec, 'all' | 'peft'][] = [
      ['ln', { method: 'ln' }, 'all'], ['ffn', { method: 'ffn' }, 'all'], ['attn', { method: 'attn' }, 'all'],
      ['bitfit', { method: 'bitfit' }, 'all'], ['full', { method: 'full' }, 'all'],
      ['lora', { method: 'lora', lora: { r: 4, alpha: 8 } }, 'peft'],
      ['lora_extra', { method: 'lora', lora: { r: 4, alpha: 8 }, trainExtra: 'multi_modal_projector' }, 'peft'],
      ['dora', { method: 'lora', lora: { r: 2, alpha: 4, dora: true } }, 'peft'],
    ];
    const scoped: Record<string, number> = {};
    for (const [name, spec, total] of specs) {
      const model = await loadModel(join(dir, 'llava'));
      const applied = await applyMethod(model, spec);
      const r = trainableReport(model, applied);
      assert.deepEqual({ trainable: r.trainable, all: total === 'peft' ? r.peft.total : r.total }, counts[name], name);
      model.dispose();
    }
    for (const scope of ['vision', 'language']) {
      const model = await loadModel(join(dir, 'llava'));
      const applied = await applyMethod(model, { method: 'ln', scope });
      scoped[scope] = trainableReport(model, applied).trainable;
      assert.ok(applied.trainable.every((n) => n.startsWith(scope === 'vision' ? 'vision_tower.' : 'language_model.')), `ln --scope ${scope}`);
      model.dispose();
    }
    assert.equal(scoped['vision']! + scoped['language']!, counts['ln']!.trainable, 'the two towers hold every norm');
    const model = await loadModel(join(dir, 'llava'));
    await assert.rejects(applyMethod(model, { method: 'ln', scope: 'projector' }), /method 'ln' with scope 'projector' selects no parameter/);
    const proj = await applyMethod(model, { method: 'full', scope: 'projector' });
    assert.deepEqual(proj.trainable, ['multi_modal_projector.linear_1.weight', 'multi_modal_projector.linear_1.bias', 'multi_modal_projector.linear_2.weight', 'multi_modal_projector.linear_2.bias']);
    model.dispose();
  });

  it("transformers-5 names: transformers' own conversion of every checkpoint key, 5.x-saved and 4.x forms", async () => {
    const maps = ref.names;
    for (const form of ['llava', 'llava_v4']) {
      const model = await loadModel(join(dir, form));
      const params = model.parameters();
      const names = new HfNames(model, params.map((p) => p.name));
      const expected = maps[join(dir, form)]!;
      assert.ok(Object.keys(expected).length >= params.length - 1, `${form}: transformers mapped the keys`);
      for (const [key, v5] of Object.entries(expected)) assert.equal(names.toTransformers5(key), v5, `${form}: ${key}`);
      model.dispose();
    }
  });

  it("peft's adapter (LoRA on both towers + projector) loads here; ours, from either key form, loads in peft; same logits", async () => {
    const jobs: { model: string; adapter: string; out: string; inputs: string }[] = [
      { model: join(dir, 'llava'), adapter: join(dir, 'llava_lora'), out: join(tmp, 'peft.out.safetensors'), inputs: join(dir, 'llava_batch.safetensors') },
    ];
    const ours: number[][] = [];
    const theirs = await loadModel(join(dir, 'llava_v4'));
    const fromPeft = await loadAdapter(theirs, join(dir, 'llava_lora'));
    assert.equal(fromPeft.adapters.length, 8);
    assert.deepEqual(fromPeft.modulesToSave, ['multi_modal_projector']);
    const peftLogits = await logits(theirs);
    theirs.dispose();
    for (const form of ['llava', 'llava_v4']) {
      const model = await loadModel(join(dir, form));
      const applied = await applyMethod(model, { method: 'lora', lora: { r: 2, alpha: 8, targets: 'q_proj,v_proj', rslora: true }, trainExtra: 'multi_modal_projector' });
      noGrad(() => {
        for (const n of applied.trainable) {
          const p = model.parameter(n);
          p.add_(randn(p.shape).mul(0.05));
          p.dispose();
        }
      });
      ours.push(await logits(model));
      const out = join(tmp, `ours-${form}`);
      await saveTrainedOutput(model, applied, out);
      const keys = readSafetensorsHeader(join(out, 'adapter_model.safetensors')).tensors.map((t) => t.name);
      assert.ok(keys.includes('base_model.model.model.vision_tower.encoder.layers.0.self_attn.q_proj.lora_A.weight'), `${form}: transformers-5 names`);
      assert.ok(keys.includes('base_model.model.model.multi_modal_projector.linear_1.weight'));
      assert.deepEqual(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')).modules_to_save, ['model.multi_modal_projector']);
      jobs.push({ model: join(dir, 'llava'), adapter: out, out: join(tmp, `ours-${form}.out.safetensors`), inputs: join(dir, 'llava_batch.safetensors') });
      model.dispose();
    }
    const file = join(tmp, 'jobs.json');
    writeFileSync(file, JSON.stringify(jobs));
    runPython('peft_reference.py', ['forward', file]);
    const get = async (f: string) => realRows((await loadSafetensors(f)).tensors['logits']!.toTypedArray() as Float32Array);
    assertClose(peftLogits, await get(jobs[0]!.out), { atol: 1e-4, rtol: 1e-4, message: "peft's adapter, here" });
    assertClose(ours[0]!, await get(jobs[1]!.out), { atol: 1e-4, rtol: 1e-4, message: 'ours (5.x-saved checkpoint), in peft' });
    assertClose(ours[1]!, await get(jobs[2]!.out), { atol: 1e-4, rtol: 1e-4, message: 'ours (4.x checkpoint names), in peft' });
  });

  it('5 AdamW steps match PyTorch + peft: LN, FFN, attention, full, LoRA from the same adapter file', async () => {
    const reference = ref.train;
    for (const [i, c] of cases.entries()) {
      const model = await loadModel(join(dir, 'llava'));
      const applied = await applyMethod(model, c.spec);
      assert.equal(trainableReport(model, applied).trainable, reference[i]!.trainable, `${c.spec.method}: trainable`);
      model.train();
      const params = applied.trainable.map((name) => ({ name, tensor: model.parameter(name) }));
      const optimizer = createOptimizer({ kind: 'adamw', lr: LR, weightDecay: 0 }, params);
      const losses: number[] = [];
      for (let step = 0; step < STEPS; step++) {
        optimizer.zeroGrad();
        const out = await model.forward(batch, { grad: true });
        out['loss']!.backward();
        optimizer.step();
        losses.push(out['loss']!.item());
        for (const t of Object.values(out)) t.dispose();
      }
      assertClose(losses, reference[i]!.losses, { atol: 0, rtol: 1e-4, message: `${c.spec.method}: losses` });
      optimizer.dispose();
      for (const p of params) p.tensor.dispose();
      model.dispose();
    }
  });
});
