// The trainer as a library and through `medtune train`: logs, outputs, resume that continues the
// exact trajectory, a NaN loss that stops the run naming the step, the event loop staying free
// during steps, and no leaked tensors. A tiny ViT made with createModel, synthetic data.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createModel, loadModel, loadSafetensors, saveSafetensors } from '../../lib/models/index.ts';
import { cat, Generator, liveTensors, randn, tidy } from '../../lib/torch/index.ts';
import { CheckpointError, listCheckpoints } from '../../lib/train/checkpoint.ts';
import { resolveTrainConfig, type TrainConfig } from '../../lib/train/config.ts';
import { datasetFromLoader, TensorFileDataset } from '../../lib/train/dataset.ts';
import { LineProgress, silentProgress, TerminalProgress } from '../../lib/train/progress.ts';
import { train, TrainingDivergedError, type StepTiming } from '../../lib/train/trainer.ts';
import type { StepRecord } from '../../lib/train/step-log.ts';
import { REPO_ROOT } from '../helpers/fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medtune-trainer-'));
const modelDir = join(tmp, 'vit');
const dataFile = join(tmp, 'train.safetensors');
const nanFile = join(tmp, 'nan.safetensors');

const vitConfig = {
  model_type: 'vit', architectures: ['ViTForImageClassification'], hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2,
  intermediate_size: 32, image_size: 8, patch_size: 4, num_labels: 3, problem_type: 'multi_label_classification',
};

before(async () => {
  await tidy(async () => {
    const model = await createModel(vitConfig, { seed: 1 });
    await model.save(modelDir);
    const g = new Generator(5);
    const pixels = randn([20, 3, 8, 8], { generator: g });
    // Labels a function of the image, so the loss can fall.
    const labels = pixels.mean([1, 2]).narrow(1, 0, 3).gt(0).float();
    await saveSafetensors(dataFile, { pixel_values: pixels, labels });
    const bad = pixels.clone();
    bad.index(13).fill_(NaN);
    await saveSafetensors(nanFile, { pixel_values: bad, labels });
  });
});
after(() => rmSync(tmp, { recursive: true, force: true }));

async function run(settings: Partial<TrainConfig> & { out: string }, opts: { data?: string; resumeFrom?: string; dtype?: 'bf16' } = {}) {
  const model = await loadModel(modelDir, opts.dtype ? { dtype: opts.dtype } : {});
  const data = await TensorFileDataset.open(opts.data ?? dataFile);
  try {
    model.setRequiresGrad('all', true);
    const lines: string[] = [];
    const result = await train({
      model, train: data, config: resolveTrainConfig(settings), progress: silentProgress, print: (l) => lines.push(l),
      ...(opts.resumeFrom ? { resumeFrom: opts.resumeFrom } : {}),
    });
    return { result, lines };
  } finally {
    data.dispose();
    model.dispose();
  }
}

const base = { optimizer: 'adamw', lr: 5e-3, batchSize: 4, gradAccum: 2, seed: 9, schedule: 'cosine', warmup: 1 } as const;

describe('trainer', () => {
  it('writes the step log, the resolved config, the trainer state and the trained tensors; the loss falls', async () => {
    const out = join(tmp, 'basic');
    const before = liveTensors();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const { result, lines } = await run({ ...base, epochs: 6, out });
    clearInterval(timer);
    assert.equal(liveTensors(), before, 'no tensor outlives the run');
    assert.ok(ticks > result.steps, `the event loop ran during training (${ticks} timer ticks over ${result.steps} steps)`);
    assert.equal(result.steps, 18); // 20 examples / 4 = 5 micro-batches -> 3 windows of 2 per epoch
    assert.match(lines[0]!, /^trainable params: 5,411 \|\| all params: 5,411 \|\| trainable%: 100\.0000$/);
    assert.ok(result.losses.at(-1)! < result.losses[0]! - 0.05, `loss falls: ${result.losses.map((l) => l.toFixed(3)).join(' ')}`);

    const log = readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>);
    assert.equal(log.length, 18);
    for (const key of ['type', 'step', 'epoch', 'loss', 'lr', 'grad_norm', 'samples', 'step_ms', 'samples_per_s']) assert.ok(key in log[0]!, `log has ${key}`);
    assert.deepEqual(log.map((r) => r['step']), Array.from({ length: 18 }, (_, i) => i + 1));
    assert.deepEqual(log.slice(0, 3).map((r) => r['samples']), [8, 8, 4], 'the epoch remainder is a short window');
    assert.equal(log[0]!['lr'], 0, 'warmup starts at 0, as transformers');
    assert.deepEqual(log.map((r) => r['epoch']).slice(0, 4), [1, 1, 1, 2]);

    const config = JSON.parse(readFileSync(join(out, 'training_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config['total_steps'], 18);
    assert.equal(config['loss_scaling'], 'batches');
    assert.deepEqual((config['param_groups'] as { name: string; weight_decay: number }[]).map((g) => g.name), ['decay', 'no_decay']);
    const state = JSON.parse(readFileSync(join(out, 'trainer_state.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(state['global_step'], 18);
    const trained = await loadSafetensors(join(out, 'trainable.safetensors'));
    const reloaded = await loadModel(modelDir);
    const names = reloaded.parameters().map((p) => p.name);
    reloaded.dispose();
    assert.deepEqual(Object.keys(trained.tensors).sort(), [...names].sort());
    for (const t of Object.values(trained.tensors)) t.dispose();
  });

  it('times each step: native_ms is the native step\'s own split, inside step_ms; the instants share one clock, in causal order', async () => {
    const model = await loadModel(modelDir);
    const data = await TensorFileDataset.open(dataFile);
    const seen: { record: StepRecord; timing: StepTiming }[] = [];
    try {
      model.setRequiresGrad('all', true);
      await train({
        model, train: data, config: resolveTrainConfig({ ...base, steps: 4, out: join(tmp, 'timing') }), progress: silentProgress, print: () => {},
        onStep: (record, timing) => seen.push({ record, timing }),
      });
    } finally {
      data.dispose();
      model.dispose();
    }
    assert.equal(seen.length, 4);
    for (const { record, timing: t } of seen) {
      const native = t.forwardBackwardMs + t.optimizerMs;
      assert.ok(Math.abs(record.native_ms - native) <= 0.001, `native_ms ${record.native_ms} is forward/backward + optimizer ${native}`);
      assert.ok(record.native_ms > 0 && record.native_ms <= record.step_ms, `native ${record.native_ms} ms within the step's ${record.step_ms} ms`);
      // process.hrtime and the native steady_clock are the same monotonic clock: the call comes
      // before the native step starts, its end before the loop resumes.
      assert.ok(t.calledAtMs <= t.startedAtMs && t.startedAtMs < t.endedAtMs && t.endedAtMs <= t.resumedAtMs, JSON.stringify(t));
      assert.ok(t.endedAtMs - t.startedAtMs >= native - 1e-6, `the native step's span ${t.endedAtMs - t.startedAtMs} ms holds its parts ${native} ms`);
    }
  });

  it('resuming from a checkpoint continues the uninterrupted trajectory exactly', async () => {
    const full = await run({ ...base, steps: 7, saveEvery: 3, keepCheckpoints: 5, out: join(tmp, 'full') });
    assert.deepEqual(listCheckpoints(join(tmp, 'full')).map((c) => c.step), [3, 6]);
    const resumed = await run({ ...base, steps: 7, out: join(tmp, 'resumed') }, { resumeFrom: join(tmp, 'full', 'checkpoint-3') });
    assert.match(resumed.lines.join('\n'), /resuming from .*checkpoint-3 after step 3 \(continuing in epoch 2\)/);
    assert.deepEqual(resumed.result.losses, full.result.losses.slice(3));
    const a = await loadSafetensors(join(tmp, 'full', 'trainable.safetensors'));
    const b = await loadSafetensors(join(tmp, 'resumed', 'trainable.safetensors'));
    for (const [k, t] of Object.entries(a.tensors)) assert.deepEqual(b.tensors[k]!.toNumbers(), t.toNumbers(), k);
    await assert.rejects(run({ ...base, steps: 7, out: join(tmp, 'x'), optimizer: 'sgd' }, { resumeFrom: join(tmp, 'full', 'checkpoint-3') }),
      /saved by a adamw optimizer, this run uses sgd/);
    await assert.rejects(run({ ...base, steps: 7, out: join(tmp, 'x') }, { resumeFrom: join(tmp, 'nowhere') }), CheckpointError);
    await assert.rejects(run({ ...base, steps: 7, batchSize: 5, out: join(tmp, 'x') }, { resumeFrom: join(tmp, 'full', 'checkpoint-3') }),
      /the checkpoint's data order differs from this run's \(batch_size 4 vs 5\)/);
    // A longer run from the same checkpoint: allowed, with a note about the new schedule.
    const longer = await run({ ...base, steps: 9, out: join(tmp, 'longer') }, { resumeFrom: join(tmp, 'full', 'checkpoint-3') });
    assert.match(longer.lines[0]!, /^note: the learning-rate schedule differs from the checkpoint's \(now cosine over 9 steps/);
    assert.equal(longer.result.steps, 9);
  });

  it('trains in bfloat16 (mixed precision): the same run within half-precision noise, trained tensors float32 masters', async () => {
    const fp32 = await run({ ...base, steps: 4, out: join(tmp, 'fp32') });
    const bf16 = await run({ ...base, steps: 4, out: join(tmp, 'bf16') }, { dtype: 'bf16' });
    assert.equal(bf16.result.mixedPrecision.computeDType, 'bfloat16');
    assert.equal(fp32.result.mixedPrecision.computeDType, null);
    bf16.result.losses.forEach((l, i) => assert.ok(Math.abs(l - fp32.result.losses[i]!) < 0.02, `step ${i + 1}: bf16 ${l} vs fp32 ${fp32.result.losses[i]}`));
    const trained = await loadSafetensors(join(tmp, 'bf16', 'trainable.safetensors'));
    assert.ok(Object.values(trained.tensors).every((t) => t.dtype === 'float32'), 'the masters are saved as they are');
    for (const t of Object.values(trained.tensors)) t.dispose();
  });

  it('--log-every: the steps between reads give the same numbers and log lines, read in one transfer', async () => {
    const every = await run({ ...base, steps: 7, out: join(tmp, 'log1') });
    const deferred = await run({ ...base, steps: 7, logEvery: 3, out: join(tmp, 'log3') });
    assert.deepEqual(deferred.result.losses, every.result.losses);
    const lines = (dir: string) => readFileSync(join(tmp, dir, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const strip = (r: Record<string, unknown>) => ({ step: r['step'], loss: r['loss'], lr: r['lr'], grad_norm: r['grad_norm'], samples: r['samples'] });
    assert.deepEqual(lines('log3').map(strip), lines('log1').map(strip));
  });

  it('--log-every with a NaN step: found at the next read, the weights are those of the last good step', async () => {
    const settings = { ...base, gradAccum: 1, shuffle: false, schedule: 'constant', warmup: 0 } as const;
    await run({ ...settings, steps: 3, out: join(tmp, 'clean3-deferred') }, { data: nanFile });
    const model = await loadModel(modelDir);
    const data = await TensorFileDataset.open(nanFile);
    try {
      model.setRequiresGrad('all', true);
      // Step 4 is NaN; the numbers are read at step 5 (log every 5): step 5 must not have changed anything.
      await assert.rejects(train({ model, train: data, config: resolveTrainConfig({ ...settings, steps: 5, logEvery: 5, out: join(tmp, 'nandeferred') }), progress: silentProgress, print: () => {} }),
        (err: unknown) => err instanceof TrainingDivergedError && err.step === 4);
      const clean = await loadSafetensors(join(tmp, 'clean3-deferred', 'trainable.safetensors'));
      for (const [name, t] of Object.entries(clean.tensors)) {
        const p = model.parameter(name);
        assert.deepEqual(p.toNumbers(), t.toNumbers(), name);
        p.dispose();
        t.dispose();
      }
    } finally {
      data.dispose();
      model.dispose();
    }
  });

  it('a NaN loss stops the run at its step, before any update, and keeps the last checkpoint', async () => {
    const out = join(tmp, 'nan');
    // File order, batch 4, no accumulation: example 13 is in the 4th batch = step 4.
    await assert.rejects(run({ ...base, gradAccum: 1, shuffle: false, steps: 5, saveEvery: 2, out }, { data: nanFile }), (err: unknown) => {
      assert.ok(err instanceof TrainingDivergedError);
      assert.equal(err.step, 4);
      assert.match(err.message, /^step 4: the loss is NaN; training stopped before updating the weights at this step\. The last good checkpoint is .*checkpoint-2/);
      return true;
    });
    assert.ok(existsSync(join(out, 'checkpoint-2', 'trainable.safetensors')));
    assert.ok(!existsSync(join(out, 'trainable.safetensors')), 'no final output from a diverged run');
    const log = readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n');
    assert.equal(log.length, 3, 'steps 1-3 are logged');
  });

  it('with fused optimizers the NaN step is skipped on the device: the weights stay those after step 3', async () => {
    // A constant schedule, so that the 3-step and the 5-step runs share their first three steps.
    const settings = { ...base, gradAccum: 1, shuffle: false, schedule: 'constant', warmup: 0, optimizerImplementation: 'fused' } as const;
    await run({ ...settings, steps: 3, out: join(tmp, 'clean3') }, { data: nanFile });
    const model = await loadModel(modelDir);
    const data = await TensorFileDataset.open(nanFile);
    try {
      model.setRequiresGrad('all', true);
      await assert.rejects(train({ model, train: data, config: resolveTrainConfig({ ...settings, steps: 5, out: join(tmp, 'nanfused') }), progress: silentProgress, print: () => {} }),
        /^TrainingDivergedError: step 4: the loss is NaN/);
      const clean = await loadSafetensors(join(tmp, 'clean3', 'trainable.safetensors'));
      for (const [name, t] of Object.entries(clean.tensors)) {
        const p = model.parameter(name);
        assert.deepEqual(p.toNumbers(), t.toNumbers(), name);
        p.dispose();
        t.dispose();
      }
    } finally {
      data.dispose();
      model.dispose();
    }
  });
});

describe('datasets from per-item loaders', () => {
  it('a loader-backed dataset (items loaded asynchronously, then collated) trains exactly like the tensor file', async () => {
    const viaFile = await run({ ...base, steps: 4, out: join(tmp, 'via-file') });
    const model = await loadModel(modelDir);
    const file = await TensorFileDataset.open(dataFile);
    try {
      const rows = Array.from({ length: file.size }, (_, i) => i);
      const dataset = datasetFromLoader({
        items: rows,
        loadItem: async (i: number) => {
          await new Promise((r) => setTimeout(r, (i * 7) % 5)); // out-of-order completion
          return file.batch([i]);
        },
        collate: (loaded) => {
          const batch = { pixel_values: cat(loaded.map((b) => b['pixel_values']!)), labels: cat(loaded.map((b) => b['labels']!)) };
          for (const b of loaded) for (const t of Object.values(b)) t?.dispose();
          return batch;
        },
      }, 'batches', 'rows of train.safetensors');
      model.setRequiresGrad('all', true);
      const before = liveTensors();
      const result = await train({ model, train: dataset, config: resolveTrainConfig({ ...base, steps: 4, out: join(tmp, 'via-loader') }), progress: silentProgress, print: () => {} });
      assert.deepEqual(result.losses, viaFile.result.losses);
      assert.equal(liveTensors(), before, 'batches are disposed after their step');
    } finally {
      file.dispose();
      model.dispose();
    }
  });
});

describe('evaluation', () => {
  it('every N steps and at the end; eval_loss is the validation set\'s mean loss', async () => {
    const out = join(tmp, 'eval');
    const model = await loadModel(modelDir);
    const data = await TensorFileDataset.open(dataFile);
    const val = await TensorFileDataset.open(dataFile);
    try {
      model.setRequiresGrad('all', true);
      const result = await train({
        model, train: data, eval: val, config: resolveTrainConfig({ ...base, steps: 5, evalEvery: 2, evalBatchSize: 7, out }),
        progress: silentProgress, print: () => {},
      });
      const evals = readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>)
        .filter((r) => r['type'] === 'eval');
      assert.deepEqual(evals.map((r) => r['step']), [2, 4, 5]);
      assert.equal(evals[2]!['eval_samples'], 20);
      // The final weights, one batch of all 20 examples: the same mean (batches of 7, 7, 6 weighted by size).
      const all = val.batch(Array.from({ length: 20 }, (_, i) => i));
      const whole = await model.forward(all, { grad: false });
      assert.ok(Math.abs(whole['loss']!.item() - (evals[2]!['eval_loss'] as number)) < 1e-6);
      assert.equal(result.lastEval?.eval_loss, evals[2]!['eval_loss']);
      for (const t of [...Object.values(all), ...Object.values(whole)]) t?.dispose();
    } finally {
      val.dispose();
      data.dispose();
      model.dispose();
    }
  });
});

describe('progress output', () => {
  const sample = { step: 3, totalSteps: 10, epoch: 1, loss: 0.51234, lr: 1e-4, gradNorm: 0.25, samplesPerS: 123.4, elapsedMs: 3000 };
  it('a terminal gets one redrawn bar line with loss, lr, throughput and time', () => {
    const writes: string[] = [];
    const out = { columns: 200, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream;
    const p = new TerminalProgress(out, 10);
    p.step(sample);
    p.note('eval at step 3: loss 0.5');
    p.step({ ...sample, step: 10, tokensPerS: 5000 });
    p.end();
    assert.equal(writes[0], '\r\x1b[2K[==>       ] 3/10 loss 0.5123 lr 1.00e-4 123.4 samples/s 00:03<00:07');
    assert.equal(writes[1], '\r\x1b[2Keval at step 3: loss 0.5\n[==>       ] 3/10 loss 0.5123 lr 1.00e-4 123.4 samples/s 00:03<00:07');
    assert.match(writes[2]!, /\[=========>\] 10\/10 loss 0\.5123 lr 1\.00e-4 5000 tok\/s 00:03<00:00$/);
    assert.equal(writes[3], '\n');
  });

  it('elsewhere plain lines every N steps, first and last always', () => {
    const lines: string[] = [];
    const p = new LineProgress((l) => lines.push(l), 4);
    for (let step = 1; step <= 10; step++) p.step({ ...sample, step });
    assert.deepEqual(lines.map((l) => l.slice(0, 10)), ['step  1/10', 'step  4/10', 'step  8/10', 'step 10/10']);
    assert.equal(lines[0], 'step  1/10  loss 0.5123  lr 1.00e-4  grad_norm 0.250  123.4 samples/s');
  });
});

describe('medtune train (CLI)', () => {
  const cli = join(REPO_ROOT, 'bin', 'medtune.js');
  it('trains, prints the parameter report, a falling loss and where it saved', () => {
    const out = join(tmp, 'cli');
    const stdout = execFileSync(process.execPath, [cli, 'train', '--model', modelDir, '--data', dataFile, '--steps', '6', '--batch-size', '5',
      '--lr', '1e-2', '--schedule', 'constant', '--seed', '1', '--no-shuffle', '--out', out, '--log', join(out, 'log.jsonl')], { encoding: 'utf8' });
    assert.match(stdout, /trainable params: 5,411 \|\| all params: 5,411/);
    assert.match(stdout, /step 1\/6 {2}loss 0\.\d{4}/);
    assert.match(stdout, /done: 6 steps, loss 0\.\d+ -> 0\.\d+/);
    assert.match(stdout, new RegExp(`saved trainable\\.safetensors in ${out}`));
    assert.equal(readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').length, 6);
  });

  it('--resume latest continues from the newest checkpoint with the same losses', () => {
    const out = join(tmp, 'cli-resume');
    const args = [cli, 'train', '--model', modelDir, '--data', dataFile, '--steps', '6', '--batch-size', '5', '--lr', '1e-2', '--seed', '4', '--save-every', '2', '--out', out];
    execFileSync(process.execPath, args, { encoding: 'utf8' });
    const first = readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
    const stdout = execFileSync(process.execPath, [...args, '--resume', 'latest'], { encoding: 'utf8' });
    assert.match(stdout, /resuming from .*checkpoint-4 after step 4/);
    assert.match(stdout, /done: 2 steps \(resumed after step 4, now at step 6\), loss/);
    const all = readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
    assert.deepEqual(all.slice(6).map((r) => [r.step, r.loss]), first.slice(4).map((r) => [r.step, r.loss]), 'the log continues, appended');
  });

  it('bad flags are one clear line and exit code 2', () => {
    const r = spawnSync(process.execPath, [cli, 'train', '--model', modelDir, '--data', dataFile, '--out', join(tmp, 'bad'), '--steps', 'ten'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^medtune train: --steps must be a number, got 'ten'/);
    const r2 = spawnSync(process.execPath, [cli, 'train', '--model', modelDir, '--data', dataFile, '--out', join(tmp, 'bad'), '--schedule', 'step'], { encoding: 'utf8' });
    assert.match(r2.stderr, /--schedule must be one of constant, linear, cosine, got 'step'/);
    const r3 = spawnSync(process.execPath, [cli, 'train', '--model', modelDir, '--data', join(tmp, 'missing.safetensors'), '--out', join(tmp, 'bad'), '--steps', '1'], { encoding: 'utf8' });
    assert.equal(r3.status, 1);
    assert.match(r3.stderr, /missing\.safetensors: no such file/);
  });
});
