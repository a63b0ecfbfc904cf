// `medtune compare` end to end: tiny llava-hf LLaVA (LN-tuning, LoRA) and a tiny ViT NIH classifier
// (LoRA + classifier) trained here and in PyTorch + peft from the same initial weights and batches
// agree step for step in fp32 (loss within 1e-5, equal trainable counts), with report.json,
// report.md and loss.png written; a run whose PyTorch side uses another learning rate (a hidden
// test-only flag) exits 1 and says the losses diverge.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { BatchReplayError, exportBatches, ReplayDataset } from '../../lib/compare/batches.ts';
import type { CompareReport } from '../../lib/compare/report.ts';
import { resolveTrainConfig } from '../../lib/train/config.ts';
import { trainingWindows } from '../../lib/train/data-order.ts';
import { TensorFileDataset } from '../../lib/train/dataset.ts';
import { REPO_ROOT } from '../helpers/fixtures.ts';
import { cachedFixture, referencePython } from '../helpers/python.ts';

const cli = join(REPO_ROOT, 'bin', 'medtune.js');
let tmp: string;
let llava: string;
let vit: string;
let python: string;

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'medtune-compare-'));
  llava = cachedFixture('llava-train', 'make_llava_train_fixture.py');
  vit = cachedFixture('vit-nih', 'make_vit_nih_fixture.py');
  python = referencePython();
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function compare(args: string[]) {
  const r = spawnSync(process.execPath, [cli, 'compare', ...args], { encoding: 'utf8', env: { ...process.env, MEDTUNE_PYTHON: python }, timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function readReport(out: string): CompareReport {
  return JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as CompareReport;
}

async function checkOutputs(out: string, r: CompareReport, steps: number, t: { diagnostic(m: string): void }): Promise<void> {
  assert.equal(r.steps.length, steps);
  assert.ok(r.ok, r.failures.join('; '));
  assert.ok(r.loss.max_abs_diff < 1e-5, `max loss difference ${r.loss.max_abs_diff}`);
  assert.ok(r.grad_norm.max_rel_diff < 1e-4, `max grad-norm difference ${r.grad_norm.max_rel_diff}`);
  assert.equal(r.trainable.medtune, r.trainable.pytorch);
  assert.ok(r.trainable.medtune > 0);
  // both sides trained: the loss moved, and the learning rates are the schedule's, step for step
  assert.notEqual(r.steps[0]!.medtune.loss, r.steps.at(-1)!.medtune.loss);
  for (const s of r.steps) assert.equal(s.medtune.lr, s.pytorch.lr);
  for (const side of [r.medtune, r.pytorch]) {
    assert.ok(side.median_step_ms > 0 && side.samples_per_s > 0 && side.peak_rss_bytes > 50 * 2 ** 20);
    assert.equal(side.cuda_peak_allocated_bytes, null, 'CPU run: no CUDA numbers');
  }
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(md, /\*\*Agree\*\*/);
  assert.match(md, /\| trainable parameters \| [\d,]+ \| [\d,]+ \| equal \|/);
  assert.match(md, /!\[loss curves\]\(loss\.png\)/);
  const png = await sharp(join(out, 'loss.png')).metadata();
  assert.equal(png.format, 'png');
  assert.ok(png.width! > 600 && png.height! > 300, `chart ${png.width}x${png.height}`);
  t.diagnostic(`max loss diff ${r.loss.max_abs_diff.toExponential(1)} abs / ${r.loss.max_rel_diff.toExponential(1)} rel; ` +
    `trainable ${r.trainable.medtune}; step time ${r.ratios.median_step_time.toFixed(2)}x, peak RSS ${r.ratios.peak_rss.toFixed(2)}x (medtune / PyTorch)`);
}

describe('medtune compare (CPU fp32)', () => {
  it('tiny llava-hf LLaVA, LN-tuning with accumulation over answers of different lengths', async (t) => {
    const out = join(tmp, 'llava-ln');
    const r = compare(['--model', join(llava, 'model'), '--data', join(llava, 'train.safetensors'), '--method', 'ln', '--steps', '4',
      '--batch-size', '3', '--grad-accum', '2', '--lr', '1e-2', '--schedule', 'cosine', '--warmup', '1', '--seed', '5', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote .*report\.json/);
    const report = readReport(out);
    await checkOutputs(out, report, 4, t);
    assert.ok(report.steps.every((s) => s.medtune.tokens! > 0 && s.medtune.tokens === s.pytorch.tokens), 'tokens counted alike');
    assert.ok(report.medtune.tokens_per_s! > 0);
    // the batches file holds the trainer's order: step 1 = the first two micro-batches of epoch 0
    const windows = JSON.parse(readFileSync(join(out, 'medtune', 'job.json'), 'utf8')) as { batches: string };
    const replay = ReplayDataset.open(windows.batches);
    const expected = trainingWindows(12, resolveTrainConfig({ batchSize: 3, gradAccum: 2, seed: 5, steps: 4, out: 'unused' })).next().value!;
    assert.deepEqual(replay.windows[0], expected.batches);
  });

  it('tiny llava-hf LLaVA, LoRA on q_proj / v_proj (adapter written here, loaded by peft)', async (t) => {
    const out = join(tmp, 'llava-lora');
    const r = compare(['--model', join(llava, 'model'), '--data', join(llava, 'train.safetensors'), '--method', 'lora', '--lora-r', '4', '--lora-alpha', '8',
      '--steps', '4', '--batch-size', '4', '--lr', '5e-3', '--seed', '2', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const report = readReport(out);
    await checkOutputs(out, report, 4, t);
    assert.ok(existsSync(join(out, 'init', 'adapter_config.json')) && existsSync(join(out, 'pytorch', 'adapter_model.safetensors')));
  });

  it('tiny ViT NIH classifier, LoRA on q / v with the classifier trained (modules_to_save)', async (t) => {
    const out = join(tmp, 'vit-lora');
    const r = compare(['--model', join(vit, 'model'), '--data', join(vit, 'train.safetensors'), '--method', 'lora', '--lora-r', '4', '--lora-alpha', '8',
      '--train-extra', 'classifier', '--steps', '5', '--batch-size', '8', '--lr', '1e-2', '--weight-decay', '0.01', '--max-grad-norm', '0.5', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const report = readReport(out);
    await checkOutputs(out, report, 5, t);
    // 2 layers x (q, v) x (4 x 32 + 32 x 4) + classifier 32 x 14 + 14
    assert.equal(report.trainable.medtune, 2 * 2 * 256 + 462);
    assert.equal(report.medtune.tokens_per_s, null, 'no tokens for a classifier');
  });

  it('a different learning rate on the PyTorch side: exit code 1, the divergence named', () => {
    const out = join(tmp, 'diverge');
    const r = compare(['--model', join(vit, 'model'), '--data', join(vit, 'train.safetensors'), '--method', 'ln', '--train-extra', 'classifier',
      '--steps', '3', '--batch-size', '8', '--lr', '1e-2', '--test-reference-lr', '2e-2', '--out', out]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^medtune compare: losses diverge: at step \d medtune [\d.]+ vs PyTorch [\d.]+ \(relative difference .* > tolerance 0\.0001\)/m);
    const report = readReport(out);
    assert.equal(report.ok, false);
    assert.ok(report.steps[0]!.loss_abs_diff < 1e-5, "step 1 runs before any update: the losses agree");
    assert.ok(report.loss.max_rel_diff > 1e-4);
    assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /\*\*DIVERGE\*\*/);
  });

  it('bad flags are usage errors; a missing interpreter is named', () => {
    const base = ['--model', join(vit, 'model'), '--data', join(vit, 'train.safetensors'), '--steps', '1', '--out', join(tmp, 'bad')];
    const r1 = compare([...base, '--resume', 'latest']);
    assert.equal(r1.code, 2);
    assert.match(r1.stderr, /compare runs no --resume/);
    const r2 = compare([...base, '--tolerance', 'x']);
    assert.equal(r2.code, 2);
    const r3 = compare([...base, '--python', join(tmp, 'no-python')]);
    assert.equal(r3.code, 1);
    assert.match(r3.stderr, /no Python for the PyTorch side at .*no-python/);
    const bert = join(tmp, 'bert');
    mkdirSync(bert);
    writeFileSync(join(bert, 'config.json'), '{"model_type": "bert"}');
    const r4 = compare(['--model', bert, '--data', join(vit, 'train.safetensors'), '--steps', '1', '--out', join(tmp, 'bad')]);
    assert.equal(r4.code, 1);
    assert.match(r4.stderr, /compare runs llava-hf LLaVA and ViT classifiers \(config.json model_type llava or vit\).*this one is 'bert'/);
  });
});

describe('compare batches file', () => {
  it('replays the exported micro-batches and refuses another order', async () => {
    const data = await TensorFileDataset.open(join(vit, 'train.safetensors'));
    const file = join(tmp, 'batches.safetensors');
    const config = { batchSize: 5, gradAccum: 2, dropLast: false, shuffle: true, seed: 7 };
    try {
      const exported = await exportBatches(data, config, 3, file);
      assert.equal(exported.windows.length, 3);
      const replay = ReplayDataset.open(file);
      assert.equal(replay.size, 24);
      assert.equal(replay.lossScaling, 'batches');
      const first = exported.windows[0]![0]!;
      const got = await replay.batch(first);
      const want = data.batch(first);
      assert.deepEqual(got['pixel_values']!.toTypedArray(), want['pixel_values']!.toTypedArray());
      assert.deepEqual(got['labels']!.toTypedArray(), want['labels']!.toTypedArray());
      for (const t of [...Object.values(got), ...Object.values(want)]) t?.dispose();
      await assert.rejects(replay.batch([0, 1, 2, 3, 4]), BatchReplayError);
    } finally {
      data.dispose();
    }
  });
});
