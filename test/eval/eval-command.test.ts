// `medtune eval` end to end on tiny models made by transformers (scripts/python/make_eval_fixtures.py,
// make_vit_nih_fixture.py, make_blip_fixtures.py):
//  - LLaVA (llava-hf and the original LLaVA-Med layout): greedy answers identical to transformers'
//    generate() on the prompts its processor / LLaVA-Med's model_vqa.py make, for VQA-RAD
//    questions and IU-Xray reports, batched or not; a peft LoRA adapter gives PeftModel's answers
//    (different from the base model's); trained tensors (LN-tuning's output) give the answers of
//    the `medtune merge`d model;
//  - a ViT classifier: scores equal the sigmoid of transformers' logits; per-label and macro AUROC;
//  - BLIP (MISS): generate()'s beam-search answers, MISS's accuracy beside LLaVA-Med's scores;
//  - every run's printed / JSON metrics equal `medtune score` on the predictions file it wrote;
//  - clear errors: missing files, a dataset the model cannot answer, an adapter of another model.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { readLabelCsv } from '../../lib/data/formats/classification.ts';
import { readVqaRad } from '../../lib/data/formats/vqa.ts';
import { classifierPreprocessor, scoreClassifier } from '../../lib/eval/run/classify.ts';
import { evaluate } from '../../lib/eval/run/evaluate.ts';
import { llavaSetup } from '../../lib/eval/run/llava.ts';
import { vqaAccuracy } from '../../lib/eval/vqa-accuracy.ts';
import { loadModel } from '../../lib/models/index.ts';
import { applyMethod, loadAdapter, saveTrainedOutput } from '../../lib/peft/index.ts';
import { noGrad, randn } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { REPO_ROOT } from '../helpers/fixtures.ts';
import { cachedFixture, runPythonJson } from '../helpers/python.ts';

let fx: string;
let ref: {
  llava: { vqa: string[]; report: string[]; lora_vqa: string[]; lengths: number[]; vqa_prompt_ids: number[] };
  llava_med: { vqa: string[]; lengths: number[] };
};
let scratch: string;

function medtune(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/medtune.js'), ...args], { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface EvalJson {
  task: string;
  count: number;
  predictions: string;
  metrics: Record<string, unknown>;
  miss?: { closed: number | null; open: number | null; overall: number | null; count: Record<string, number> };
}

/** `medtune eval ... --json`; checks the exit code and that `medtune score` agrees on the written file. */
function evalJson(scoreArgs: string[], ...args: string[]): { json: EvalJson; lines: Record<string, unknown>[] } {
  const r = medtune('eval', ...args, '--json');
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(r.stdout) as EvalJson;
  const lines = readFileSync(json.predictions, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const s = medtune('score', '--pred', json.predictions, ...scoreArgs, '--json');
  assert.equal(s.status, 0, s.stderr);
  assert.deepEqual(json.metrics, JSON.parse(s.stdout), 'eval metrics = medtune score on the predictions file');
  return { json, lines };
}

/** LN-tuning's output for the llava fixture as medtune train writes it (trainable.safetensors + medtune_method.json), norms moved. */
let lnOut: string | null = null;
async function lnOutput(): Promise<string> {
  if (lnOut) return lnOut;
  const model = await loadModel(join(fx, 'llava'));
  const applied = await applyMethod(model, { method: 'ln' });
  noGrad(() => {
    for (const n of applied.trainable) {
      const p = model.parameter(n);
      p.add_(randn(p.shape).mul(0.5));
      p.dispose();
    }
  });
  const out = join(scratch, 'ln-out');
  await saveTrainedOutput(model, applied, out, { baseModel: join(fx, 'llava') });
  model.dispose();
  return (lnOut = out);
}

const testIds = ['101', '102', '103', '104', '105', '106'];

describe('medtune eval', () => {
  before(() => {
    fx = cachedFixture('eval', 'make_eval_fixtures.py', [], { dependsOn: ['make_tokenizers.py'] });
    ref = JSON.parse(readFileSync(join(fx, 'reference.json'), 'utf8'));
    scratch = mkdtempSync(join(tmpdir(), 'medtune-eval-'));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it("llava-hf prompts: the processor's ids (llava-1.5 chat template, generation prompt, 4 image tokens, BOS from the tokenizer)", async () => {
    const model = await loadModel(join(fx, 'llava'));
    const setup = llavaSetup(model, join(fx, 'llava'));
    const ex = readVqaRad(join(fx, 'data', 'vqa_rad.json'), { split: 'test' }).examples[0]!;
    assert.deepEqual(await setup.builder.promptIds(ex), ref.llava.vqa_prompt_ids);
    model.dispose();
  });

  it("llava-hf on VQA-RAD test questions: transformers' greedy answers, LLaVA-Med's scores = medtune score", () => {
    assert.ok(ref.llava.lengths.some((n) => n < 12) && ref.llava.lengths.some((n) => n === 12), 'some answers end at EOS, some at the length limit');
    const vqa = join(fx, 'data', 'vqa_rad.json');
    const { json, lines } = evalJson(['--ref', vqa, '--split', 'test'], '--model', join(fx, 'llava'), '--data', vqa, '--split', 'test',
      '--max-new-tokens', '12', '--batch-size', '4', '--out', join(scratch, 'llava-vqa'));
    assert.deepEqual(lines.map((l) => l['id']), testIds);
    assert.deepEqual(lines.map((l) => l['prediction']), ref.llava.vqa);
    assert.equal(json.task, 'vqa');
    assert.equal((json.metrics['count'] as { total: number }).total, 6);
  });

  it('one question at a time gives the same answers (left padding changes nothing)', async () => {
    const r = await evaluate({ model: join(fx, 'llava'), data: join(fx, 'data', 'vqa_rad.json'), split: 'test', maxNewTokens: 12, batchSize: 1 });
    assert.deepEqual(r.predictions.map((p) => (p as { prediction: string }).prediction), ref.llava.vqa);
    assert.equal(r.predictionsFile, null);
  });

  it("report data (annotation.json test split): transformers' answers to the report instruction, report metrics = medtune score", () => {
    const ann = join(fx, 'data', 'annotation.json');
    const { lines } = evalJson(['--ref', ann, '--split', 'test'], '--model', join(fx, 'llava'), '--data', ann, '--split', 'test',
      '--max-new-tokens', '12', '--out', join(scratch, 'llava-report'));
    assert.deepEqual(lines.map((l) => l['id']), ['CXR1_1', 'CXR2_1', 'CXR3_1']);
    assert.deepEqual(lines.map((l) => l['prediction']), ref.llava.report);
  });

  it("a peft LoRA adapter: PeftModel's answers, which differ from the base model's", () => {
    const vqa = join(fx, 'data', 'vqa_rad.json');
    const { lines } = evalJson(['--ref', vqa, '--split', 'test'], '--model', join(fx, 'llava'), '--adapter', join(fx, 'llava_lora'), '--data', vqa,
      '--split', 'test', '--max-new-tokens', '12', '--batch-size', '3', '--out', join(scratch, 'llava-lora'));
    assert.deepEqual(lines.map((l) => l['prediction']), ref.llava.lora_vqa);
    assert.notDeepEqual(ref.llava.lora_vqa, ref.llava.vqa);
  });

  it('trained tensors as medtune train writes them (LN-tuning): the answers of the merged model, not the base model', async () => {
    const out = await lnOutput();
    const merged = join(scratch, 'ln-merged');
    const m = medtune('merge', '--model', join(fx, 'llava'), '--adapter', out, '--out', merged);
    assert.equal(m.status, 0, m.stderr);
    const data = join(fx, 'data', 'vqa_rad.json');
    const common = { data, split: 'test', maxNewTokens: 12, batchSize: 3 };
    const withAdapter = await evaluate({ model: join(fx, 'llava'), adapter: out, ...common });
    const fromMerged = await evaluate({ model: merged, ...common });
    const answers = (r: typeof withAdapter) => r.predictions.map((p) => (p as { prediction: string }).prediction);
    assert.deepEqual(answers(withAdapter), answers(fromMerged));
    assert.notDeepEqual(answers(withAdapter), ref.llava.vqa, 'the trained norms change the answers');
  });

  it("original LLaVA-Med layout (mistral_instruct template, -200 placeholder, padded square images): LLaVA-Med's model_vqa.py answers", () => {
    assert.ok(ref.llava_med.lengths.some((n) => n < 12), 'some answers end at EOS');
    const vqa = join(fx, 'data', 'vqa_rad.json');
    const { lines } = evalJson(['--ref', vqa, '--split', 'test'], '--model', join(fx, 'llava_med'), '--data', vqa, '--split', 'test',
      '--max-new-tokens', '12', '--batch-size', '2', '--out', join(scratch, 'llava-med'));
    assert.deepEqual(lines.map((l) => l['prediction']), ref.llava_med.vqa);
  });

  it('ViT classifier on NIH data: scores = sigmoid of transformers\' logits; per-label and macro AUROC = medtune score', () => {
    const nih = cachedFixture('vit-nih', 'make_vit_nih_fixture.py');
    const csv = join(nih, 'Data_Entry_2017.csv');
    const expected = runPythonJson<{ labels: string[]; scores: Record<string, number[]> }>('eval_reference.py', ['classify', join(nih, 'model'), csv, join(nih, 'images')]);
    const { json, lines } = evalJson(['--ref', csv], '--model', join(nih, 'model'), '--data', csv, '--batch-size', '5', '--out', join(scratch, 'vit'));
    assert.equal(lines.length, 24);
    for (const l of lines) assertClose(l['scores'] as number[], expected.scores[l['id'] as string]!, { atol: 1e-6, rtol: 0, message: String(l['id']) });
    const m = json.metrics as { labels: string[]; auroc: { perLabel: { label: string }[]; macro: number | null } };
    assert.deepEqual(m.labels, expected.labels);
    assert.equal(m.auroc.perLabel.length, 14);
    assert.ok(m.auroc.macro !== null);
  });

  it("BLIP (MISS): generate()'s beam-search answers, MISS's exact-match accuracy beside LLaVA-Med's scores", () => {
    const blip = cachedFixture('blip', 'make_blip_fixtures.py', [], { dependsOn: ['blip_reference_fix.py'] });
    const info = JSON.parse(readFileSync(join(blip, 'data.json'), 'utf8')) as { test_answers: string[]; test_references: string[] };
    const data = join(blip, 'data', 'VQA_RAD Dataset Public.json');
    const { json, lines } = evalJson(['--ref', data, '--split', 'test'], '--model', join(blip, 'original_vqa.pth'), '--arch', join(blip, 'config_original.json'),
      '--tokenizer', join(blip, 'tokenizer'), '--data', data, '--split', 'test', '--batch-size', '2', '--out', join(scratch, 'blip'));
    assert.deepEqual(lines.map((l) => l['prediction']), info.test_answers);
    const types = readVqaRad(data, { split: 'test' }).examples.map((e) => e.answerType ?? 'OPEN');
    const miss = vqaAccuracy(info.test_answers.map((p, i) => ({ prediction: p, answer: info.test_references[i]!, answerType: types[i]! })));
    assert.deepEqual(json.miss, miss);
    const table = medtune('eval', '--model', join(blip, 'original_vqa.pth'), '--arch', join(blip, 'config_original.json'), '--tokenizer', join(blip, 'tokenizer'),
      '--data', data, '--split', 'test', '--out', join(scratch, 'blip-table'));
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /closed: yes\/no accuracy/);
    assert.match(table.stdout, /MISS exact match: overall\s+\d/);
  });

  it("the LoRA paper's path: an MAE backbone .pth + the adapter medtune train wrote (LoRA on qkv[q,v], head + fc_norm) on a label CSV", async () => {
    const mae = cachedFixture('mae-pth', 'make_mae_pth_fixtures.py', [], { dependsOn: ['timm_vit_reference.py'] });
    const out = join(scratch, 'vit-lora');
    const t = medtune('train', '--model', join(mae, 'mae_pretrain.pth'), '--arch', join(mae, 'finetune.json'), '--data', join(mae, 'train.safetensors'),
      '--method', 'lora', '--lora-targets', 'qkv[q,v]', '--lora-r', '4', '--lora-alpha', '32', '--train-extra', 'head,fc_norm',
      '--lr', '1e-2', '--steps', '3', '--batch-size', '4', '--out', out);
    assert.equal(t.status, 0, t.stderr);
    const data = join(scratch, 'cxr');
    mkdirSync(join(data, 'images'), { recursive: true });
    const rows = ['path,A,B,C'];
    for (let i = 0; i < 6; i++) {
      const raw = Buffer.from(Array.from({ length: 40 * 36 * 3 }, (_, k) => (k * (i + 3) * 7919) % 251));
      await sharp(raw, { raw: { width: 40, height: 36, channels: 3 } }).png().toFile(join(data, 'images', `img${i}.png`));
      rows.push(`img${i}.png,${i % 2},${i < 3 ? 1 : 0},${i % 3 === 0 ? 1 : 0}`);
    }
    writeFileSync(join(data, 'labels.csv'), `${rows.join('\n')}\n`);
    const args = ['--model', join(mae, 'mae_pretrain.pth'), '--arch', join(mae, 'finetune.json'), '--data', join(data, 'labels.csv')];
    const bare = medtune('eval', ...args, '--out', join(scratch, 'vit-bare'));
    assert.equal(bare.status, 1);
    assert.match(bare.stderr, /head\.weight.* are not in the checkpoint \(initialised at random\); evaluate the model with the --adapter that trained them/);
    const { lines } = evalJson(['--ref', join(data, 'labels.csv')], ...args, '--adapter', out, '--out', join(scratch, 'vit-lora-eval'));
    assert.deepEqual(lines.map((l) => l['id']), ['img0.png', 'img1.png', 'img2.png', 'img3.png', 'img4.png', 'img5.png']);
    // The same scores from the library: the .pth, the adapter loaded onto it, MAE's evaluation transform.
    const model = await loadModel(join(mae, 'mae_pretrain.pth'), { config: join(mae, 'finetune.json'), numLabels: 3 });
    await loadAdapter(model, out);
    const pre = classifierPreprocessor(model, join(mae, 'mae_pretrain.pth'));
    assert.deepEqual([pre.size, pre.cropSize, pre.imageMean], [{ shortestEdge: 36 }, { height: 32, width: 32 }, [0.485, 0.456, 0.406]]);
    const [first] = await scoreClassifier(model, readLabelCsv(join(data, 'labels.csv')).examples.slice(0, 1), { imageRoot: join(data, 'images'), preprocessor: pre, labelNames: ['A', 'B', 'C'] });
    assertClose(lines[0]!['scores'] as number[], first!.scores, { atol: 0, rtol: 0, message: 'img0 scores' });
    model.dispose();
  });

  it('clear errors: missing files, a dataset the model cannot answer, an adapter trained on another model', async () => {
    const ln = await lnOutput();
    const vqa = join(fx, 'data', 'vqa_rad.json');
    const nih = cachedFixture('vit-nih', 'make_vit_nih_fixture.py');
    const cases: [string[], RegExp][] = [
      [['--model', join(fx, 'llava'), '--data', join(scratch, 'nope.json')], /nope\.json: no such data file/],
      [['--model', join(scratch, 'no-model'), '--data', vqa], /no-model: no such model directory or file/],
      [['--model', join(fx, 'llava'), '--adapter', join(scratch, 'no-adapter'), '--data', vqa], /no-adapter: no such adapter directory/],
      [['--model', join(nih, 'model'), '--data', vqa], /is a vqa dataset \(vqa-rad\), but .* is a ViTForImageClassification, which does classify, not VQA questions/],
      [['--model', join(fx, 'llava'), '--data', join(nih, 'Data_Entry_2017.csv')], /is a classify dataset \(nih\), but .* LlavaForConditionalGeneration, which does vqa \/ report, not image labels/],
      [['--model', join(fx, 'llava'), '--data', vqa, '--images', join(scratch, 'no-images')], /--images .*no-images: no such directory/],
      [['--model', join(fx, 'llava'), '--data', vqa, '--task', 'classify'], /--task classify does not fit .*vqa_rad\.json, which reads as vqa-rad/],
      [['--model', join(nih, 'model'), '--adapter', ln, '--data', join(nih, 'Data_Entry_2017.csv')],
        /ln-out: trained on a LlavaForConditionalGeneration model .* but --model .* is a ViTForImageClassification/],
      [['--model', join(nih, 'model'), '--adapter', join(fx, 'llava_lora'), '--data', join(nih, 'Data_Entry_2017.csv')],
        /llava_lora does not fit --model .*model \(ViTForImageClassification\); it was trained on a different base model/],
    ];
    for (const [args, message] of cases) {
      const r = medtune('eval', ...args, '--out', join(scratch, 'err'));
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    const usage = medtune('eval', '--data', vqa);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /--model DIR\|FILE is required/);
  });
});
