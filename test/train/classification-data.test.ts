// A ViT classifier trained straight from an NIH ChestX-ray14 Data_Entry_2017.csv and its PNGs
// (scripts/python/make_vit_nih_fixture.py, which also writes the same examples pre-processed by
// PIL + numpy as train.safetensors): the CSV's batches equal the tensor file's rows, and
// `medtune train` on the CSV gives PyTorch's per-step losses (scripts/python/train_reference.py on
// the tensor file). Label names are checked against the model's id2label; missing images are an
// error naming the example, or with --skip-bad a counted omission.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createModel, loadModel, type Model } from '../../lib/models/index.ts';
import { ClassificationDataset } from '../../lib/train/classification-data.ts';
import { resolveTrainConfig } from '../../lib/train/config.ts';
import { openTrainingData } from '../../lib/train/data-source.ts';
import { TensorFileDataset } from '../../lib/train/dataset.ts';
import { assertClose } from '../helpers/close.ts';
import { REPO_ROOT } from '../helpers/fixtures.ts';
import { cachedFixture } from '../helpers/python.ts';

const cli = join(REPO_ROOT, 'bin', 'medtune.js');
const work = mkdtempSync(join(tmpdir(), 'medtune-cls-data-'));
let fixture: string;
let model: Model;
let csv: string;
const SETTINGS = { optimizer: 'adamw', lr: 1e-3, weightDecay: 0.05, noDecay: 'norm-bias', schedule: 'cosine', warmup: 2, maxGradNorm: 1.0, batchSize: 4, gradAccum: 2, steps: 5, seed: 3, shuffle: true } as const;

before(async () => {
  fixture = cachedFixture('vit-nih', 'make_vit_nih_fixture.py');
  csv = join(fixture, 'Data_Entry_2017.csv');
  model = await loadModel(join(fixture, 'model'));
});
after(() => {
  model.dispose();
  rmSync(work, { recursive: true, force: true });
});

describe('ViT training data from an NIH ChestX-ray14 CSV', () => {
  it("batches equal the PIL-made tensor file's rows (pixel_values and multi-hot labels)", async () => {
    const data = await openTrainingData(csv, { model, modelPath: join(fixture, 'model'), images: join(fixture, 'images') });
    assert.ok(data instanceof ClassificationDataset);
    assert.equal(data.lossScaling, 'batches');
    assert.equal(data.labelNames.length, 14);
    const tensors = await TensorFileDataset.open(join(fixture, 'train.safetensors'));
    assert.equal(data.size, tensors.size);
    const all = Array.from({ length: data.size }, (_, i) => i);
    const mine = await data.batch(all);
    const theirs = tensors.batch(all);
    assertClose(mine['pixel_values']!.toTypedArray(), theirs['pixel_values']!.toTypedArray(), { atol: 1e-6, rtol: 0, message: 'pixel_values' });
    assert.deepEqual(mine['labels']!.toArray(), theirs['labels']!.toArray());
    for (const v of [...Object.values(mine), ...Object.values(theirs)]) v?.dispose();
    tensors.dispose();
  });

  it("medtune train on the CSV: PyTorch's per-step losses (AdamW, cosine warmup, clipping, accumulation 2, shuffled)", () => {
    const refDir = cachedFixture('vit-nih-csv-reference', 'train_reference.py',
      [join(fixture, 'model'), join(fixture, 'train.safetensors'), JSON.stringify([resolveTrainConfig({ ...SETTINGS, out: 'unused' })])]);
    const ref = JSON.parse(readFileSync(join(refDir, '0', 'result.json'), 'utf8')) as { steps: { loss: number }[] };
    const out = join(work, 'csv-run');
    const stdout = execFileSync(process.execPath, [cli, 'train', '--model', join(fixture, 'model'), '--data', csv, '--images', join(fixture, 'images'),
      '--method', 'full', '--optimizer', 'adamw', '--lr', '1e-3', '--weight-decay', '0.05', '--schedule', 'cosine', '--warmup', '2', '--max-grad-norm', '1',
      '--batch-size', '4', '--grad-accum', '2', '--steps', '5', '--seed', '3', '--out', out], { encoding: 'utf8' });
    assert.match(stdout, /done: 5 steps/);
    const losses = readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; loss: number })
      .filter((r) => r.type === 'train').map((r) => r.loss);
    assertClose(losses, ref.steps.map((s) => s.loss), { atol: 0, rtol: 1e-4, message: 'losses' });
    const config = JSON.parse(readFileSync(join(out, 'training_config.json'), 'utf8')) as { train_data: string; loss_scaling: string };
    assert.match(config.train_data, /24 images with 14 labels from .*Data_Entry_2017\.csv/);
    assert.equal(config.loss_scaling, 'batches');
  });
});

describe('bad classification data', () => {
  it("labels that are not the model's id2label are refused, naming both lists", async () => {
    const two = join(work, 'two.csv');
    writeFileSync(two, 'path,Effusion,Mass\n00000001_000.png,1,0\n');
    await assert.rejects(openTrainingData(two, { model, images: join(fixture, 'images') }),
      /two\.csv: the dataset's labels differ from the model's:\n {2}dataset \(2\): Effusion, Mass\n {2}model id2label \(14\): Atelectasis, Cardiomegaly/);
    const names = (model.config['id2label'] as Record<string, string>);
    const reordered = Object.values(names).reverse();
    const swapped = join(work, 'reordered.csv');
    writeFileSync(swapped, `path,${reordered.join(',')}\n00000001_000.png,${reordered.map(() => 0).join(',')}\n`);
    await assert.rejects(openTrainingData(swapped, { model, images: join(fixture, 'images') }), /the dataset's labels are the model's in another order/);
  });

  it('an unnamed head of the wrong size, or no head, points at --num-labels', async () => {
    const base = { model_type: 'vit', architectures: ['ViTForImageClassification'], hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, image_size: 32, patch_size: 8, problem_type: 'multi_label_classification' };
    const three = await createModel({ ...base, num_labels: 3 }, { seed: 1 });
    await assert.rejects(openTrainingData(csv, { model: three, images: join(fixture, 'images') }), /has 14 labels \(Atelectasis, .*\) but the model's head has 3 outputs; use --num-labels 14/);
    three.dispose();
    const backbone = await createModel({ ...base, architectures: ['ViTModel'] }, { seed: 1 });
    await assert.rejects(openTrainingData(csv, { model: backbone, images: join(fixture, 'images') }), /no classification head; give --num-labels 14/);
    backbone.dispose();
    const single = await createModel({ ...base, num_labels: 14, problem_type: 'single_label_classification' }, { seed: 1 });
    await assert.rejects(openTrainingData(csv, { model: single, images: join(fixture, 'images') }), /problem_type is single_label_classification, but .* holds multi-hot labels/);
    single.dispose();
  });

  it('a missing image names the row and the image; --skip-bad leaves it out and counts it', async () => {
    const dir = join(work, 'nih');
    mkdirSync(dir, { recursive: true });
    const lines = readFileSync(csv, 'utf8').trimEnd().split('\n');
    const broken = [...lines, lines[1]!.replace(/^[^,]+/, '99999999_000.png')];
    writeFileSync(join(dir, 'Data_Entry_2017.csv'), `${broken.join('\n')}\n`);
    await assert.rejects(openTrainingData(join(dir, 'Data_Entry_2017.csv'), { model, images: join(fixture, 'images') }),
      /Data_Entry_2017\.csv, line 26, field 'image': example '99999999_000\.png': image file not found/);
    const warnings: string[] = [];
    const data = await openTrainingData(join(dir, 'Data_Entry_2017.csv'), { model, images: join(fixture, 'images'), skipBad: true, warn: (l) => warnings.push(l) });
    assert.equal(data.size, 24);
    assert.deepEqual(warnings.map((w) => w.replace(/ \(first.*/, '')), ['--skip-bad: skipped 1 bad example']);
  });
});
