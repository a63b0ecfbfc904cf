// LLaVA training straight from a VQA-RAD-style file: the batch openTrainingData makes for a tiny
// llava-hf checkpoint (BPE tokenizer whose post-processor adds <s>, llava-1.5-hf's chat template
// without bos_token, CLIPImageProcessor) equals what transformers' LlavaProcessor and the chat
// template make of the same records and PNGs (scripts/python/llava_batch_reference.py), and the
// first step of `medtune train --method ln` on the file has the model's forward loss on that
// batch. Bad inputs: a missing or corrupt image is an error naming the record and the example, or
// with --skip-bad a counted omission; a task that does not fit the file is refused.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { loadModel, type Model } from '../../lib/models/index.ts';
import { openTrainingData } from '../../lib/train/data-source.ts';
import { VlmDataset } from '../../lib/train/vlm-data.ts';
import { assertClose } from '../helpers/close.ts';
import { REPO_ROOT } from '../helpers/fixtures.ts';
import { cachedFixture, runPythonJson } from '../helpers/python.ts';
import { wordLevelTokenizer } from '../../scripts/start/tiny-llava.ts';

interface Ref { input_ids: number[][]; attention_mask: number[][]; labels: number[][]; pixel_values: number[]; pixel_shape: number[]; prompt_lengths: number[]; loss: number }

const cli = join(REPO_ROOT, 'bin', 'medtune.js');
const work = mkdtempSync(join(tmpdir(), 'medtune-vlm-data-'));
const images = join(work, 'images');
const dataFile = join(work, 'VQA_RAD Dataset Public.json');
let modelDir: string;
let model: Model;

// Different sizes and kinds (RGB, grey, grey + alpha, wide and tall) so that the shortest-edge
// resize, the centre crop and the conversion to RGB all do something.
const IMAGES: [string, number, number, 1 | 2 | 3][] = [['synpic1.png', 40, 30, 3], ['synpic2.png', 24, 36, 1], ['synpic3.png', 33, 33, 2], ['synpic4.png', 50, 20, 3]];
const RECORDS = ([
  ['synpic1.png', 'Is there a pleural effusion?', 'Yes', 'CLOSED'],
  ['synpic2.png', 'Which side is the opacity on?', 'Left', 'OPEN'],
  ['synpic3.png', 'What organ is shown in this image?', 'The liver, with a hypodense lesion', 'OPEN'],
  ['synpic4.png', 'Is the heart enlarged?', 'No', 'CLOSED'],
  ['synpic1.png', 'Are the lungs clear?', 'No, there is consolidation in the right lower lobe', 'OPEN'],
  ['synpic2.png', 'Is this a chest x-ray?', 'yes', 'CLOSED'],
] as [string, string, string, string][]).map(([image, question, answer, type], i) => ({ qid: i + 1, image_name: image, question, answer, answer_type: type, phrase_type: 'freeform', question_type: 'PRES', image_organ: 'CHEST' }));

async function writeImage(dir: string, [name, w, h, channels]: (typeof IMAGES)[number], seed: number): Promise<void> {
  const raw = Buffer.alloc(w * h * channels);
  for (let j = 0; j < raw.length; j++) raw[j] = (j * (seed + 7) + ((j / w) | 0) * 13) % 256;
  let img = sharp(raw, { raw: { width: w, height: h, channels } });
  if (channels <= 2) img = img.toColourspace('b-w');
  await img.png().toFile(join(dir, name));
}

before(async () => {
  modelDir = join(cachedFixture('llava-data', 'make_llava_data_fixtures.py', [], { dependsOn: ['make_tokenizers.py'] }), 'llava');
  mkdirSync(images, { recursive: true });
  for (const [i, spec] of IMAGES.entries()) await writeImage(images, spec, i);
  writeFileSync(dataFile, JSON.stringify(RECORDS, null, 1));
  model = await loadModel(modelDir);
});
after(() => {
  model.dispose();
  rmSync(work, { recursive: true, force: true });
});

const reference = (file: string, imageDir: string, indices: number[]) => runPythonJson<Ref>('llava_batch_reference.py', [modelDir, file, imageDir, JSON.stringify(indices)]);

describe('LLaVA training data from a VQA-RAD file (llava-hf, chat template, CLIP pixels)', () => {
  let ref: Ref;
  before(() => {
    ref = reference(dataFile, images, [0, 1, 2, 3]);
  });

  it("a batch equals LlavaProcessor.apply_chat_template's: input_ids, attention_mask, labels exactly, pixel_values within 1/255", async (t) => {
    const data = await openTrainingData(dataFile, { model, modelPath: modelDir, images });
    assert.ok(data instanceof VlmDataset);
    assert.equal(data.size, RECORDS.length);
    assert.equal(data.lossScaling, 'tokens');
    assert.match(data.describe(), /6 conversations from .*chat template; images: .*llava\/processor_config\.json/);
    const batch = await data.batch([0, 1, 2, 3]);
    try {
      assert.deepEqual(batch['input_ids']!.toArray(), ref.input_ids);
      assert.deepEqual(batch['attention_mask']!.toArray(), ref.attention_mask);
      assert.deepEqual(batch['labels']!.toArray(), ref.labels);
      // The processor adds BOS (the template has none); four image tokens per image; right padding.
      assert.ok(ref.input_ids.every((row) => row[0] === 1), 'BOS first');
      assert.deepEqual(batch['pixel_values']!.shape, ref.pixel_shape);
      const mine = batch['pixel_values']!.toTypedArray() as Float32Array;
      let worst = 0;
      for (let i = 0; i < mine.length; i++) worst = Math.max(worst, Math.abs(mine[i]! - ref.pixel_values[i]!));
      assert.ok(worst <= 1 / 255, `pixel_values differ by ${worst}`);
      t.diagnostic(`largest pixel_values difference from CLIPImageProcessor: ${worst.toExponential(2)}`);
      const out = await model.forward(batch, { grad: false });
      assertClose(out['loss']!.item(), ref.loss, { atol: 0, rtol: 1e-5, message: 'forward loss on the batch' });
      for (const v of Object.values(out)) v?.dispose();
    } finally {
      for (const v of Object.values(batch)) v?.dispose();
    }
  });

  it('medtune train --method ln on the file: step 1 has the model\'s forward loss on that batch; the LayerNorm tensors are saved', () => {
    const out = join(work, 'ln');
    const stdout = execFileSync(process.execPath, [cli, 'train', '--model', modelDir, '--data', dataFile, '--images', images, '--method', 'ln',
      '--steps', '2', '--batch-size', '4', '--no-shuffle', '--lr', '1e-2', '--schedule', 'constant', '--out', out], { encoding: 'utf8' });
    assert.match(stdout, /trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%/);
    const log = readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; loss: number; supervised_tokens: number });
    const steps = log.filter((r) => r.type === 'train');
    assertClose(steps[0]!.loss, ref.loss, { atol: 0, rtol: 1e-5, message: 'step-1 loss' });
    const supervised = ref.labels.flatMap((row) => row.slice(1)).filter((v) => v !== -100).length;
    assert.equal(steps[0]!.supervised_tokens, supervised);
    assert.ok(existsSync(join(out, 'trainable.safetensors')));
    const config = JSON.parse(readFileSync(join(out, 'training_config.json'), 'utf8')) as { train_data: string; loss_scaling: string };
    assert.equal(config.loss_scaling, 'tokens');
    assert.match(config.train_data, /chat template/);
  });

  it('--conv-template vicuna_v1 renders LLaVA-Med\'s conversation instead of the chat template', async () => {
    const data = await openTrainingData(dataFile, { model, modelPath: modelDir, images, convTemplate: 'vicuna_v1' });
    assert.match(data.describe(), /conversation template vicuna_v1/);
    const batch = await data.batch([0]);
    const ids = batch['input_ids']!.toArray() as number[][];
    // "A chat between ... USER: <image>x4\nIs there ... ASSISTANT: Yes</s>" is longer than llava-1.5's prompt.
    assert.ok(ids[0]!.length > ref.input_ids[0]!.filter((_, i) => ref.attention_mask[0]![i]).length);
    for (const v of Object.values(batch)) v?.dispose();
  });
});

describe('LLaVA-Med training data (original layout: conversation template, -200 placeholder, padded square)', () => {
  // make_llava_fixtures.py's LlavaMistralForCausalLM with its CLIP tower folder, given what a
  // LLaVA-Med checkpoint directory has besides: a tokenizer without a chat template (a word-level
  // one here, within the tiny model's 96 ids) and the tower's preprocessor_config.json.
  let medDir: string;
  let med: Model;
  let refs: Record<string, Ref>;
  before(async () => {
    medDir = join(work, 'llava_med');
    cpSync(join(cachedFixture('llava', 'make_llava_fixtures.py'), 'llava_med'), medDir, { recursive: true });
    const texts = ['[INST] [/INST] A chat between a curious user and an artificial intelligence assistant. USER: ASSISTANT:',
      ...RECORDS.flatMap((r) => [r.question, r.answer])];
    writeFileSync(join(medDir, 'tokenizer.json'), JSON.stringify(wordLevelTokenizer(texts).json));
    writeFileSync(join(medDir, 'tokenizer_config.json'), JSON.stringify({
      tokenizer_class: 'PreTrainedTokenizerFast', bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: '<unk>', add_bos_token: true,
    }));
    writeFileSync(join(medDir, 'clip', 'preprocessor_config.json'), JSON.stringify({
      image_processor_type: 'CLIPImageProcessor', size: { shortest_edge: 8 }, crop_size: { height: 8, width: 8 }, resample: 3, do_center_crop: true,
    }));
    med = await loadModel(medDir);
    refs = runPythonJson<Record<string, Ref>>('llava_med_batch_reference.py', [medDir, dataFile, images, '[0,1,2,3]', 'mistral_instruct,vicuna_v1']);
  });
  after(() => med.dispose());

  for (const template of ['mistral_instruct', 'vicuna_v1'] as const) {
    it(`${template}${template === 'mistral_instruct' ? ' (the default for a Mistral LLaVA-Med)' : ''}: the batch LLaVA-Med's preprocessing makes, pixels padded to a square first`, async (t) => {
      const data = await openTrainingData(dataFile, { model: med, modelPath: medDir, images, ...(template === 'vicuna_v1' ? { convTemplate: template } : {}) });
      assert.match(data.describe(), new RegExp(`conversation template ${template}; images: .*clip/preprocessor_config\\.json`));
      const ref = refs[template]!;
      const batch = await data.batch([0, 1, 2, 3]);
      try {
        assert.deepEqual(batch['input_ids']!.toArray(), ref.input_ids);
        assert.ok(ref.input_ids.every((row) => row[0] === 1 && row.includes(-200)), 'BOS, then one -200 placeholder per image');
        assert.deepEqual(batch['attention_mask']!.toArray(), ref.attention_mask);
        assert.deepEqual(batch['labels']!.toArray(), ref.labels);
        assert.deepEqual(batch['pixel_values']!.shape, ref.pixel_shape);
        const mine = batch['pixel_values']!.toTypedArray() as Float32Array;
        let worst = 0;
        for (let i = 0; i < mine.length; i++) worst = Math.max(worst, Math.abs(mine[i]! - ref.pixel_values[i]!));
        assert.ok(worst <= 1 / 255, `pixel_values differ by ${worst}`);
        t.diagnostic(`largest pixel_values difference from expand2square + CLIPImageProcessor: ${worst.toExponential(2)}`);
        const out = await med.forward(batch, { grad: false });
        assert.ok(Number.isFinite(out['loss']!.item()));
        for (const v of Object.values(out)) v?.dispose();
      } finally {
        for (const v of Object.values(batch)) v?.dispose();
      }
    });
  }
});

describe('bad LLaVA training data', () => {
  const badDir = join(work, 'bad');
  const badImages = join(badDir, 'images');
  const badFile = join(badDir, 'VQA_RAD Dataset Public.json');
  before(async () => {
    mkdirSync(badImages, { recursive: true });
    for (const [i, spec] of IMAGES.entries()) await writeImage(badImages, spec, i);
    writeFileSync(join(badImages, 'corrupt.png'), Buffer.from('\x89PNG\r\n\x1a\nnot really a png'));
    const records = [...RECORDS, { ...RECORDS[0]!, qid: 7, image_name: 'absent.png' }, { ...RECORDS[1]!, qid: 8, image_name: 'corrupt.png' }];
    writeFileSync(badFile, JSON.stringify(records, null, 1));
  });

  it('a missing image is an error naming the file, the record and the example id', async () => {
    await assert.rejects(openTrainingData(badFile, { model, modelPath: modelDir }),
      /VQA_RAD Dataset Public\.json, line \d+, field 'image': example '7': image file not found: .*absent\.png \(--skip-bad/);
    const r = spawnSync(process.execPath, [cli, 'train', '--model', modelDir, '--data', badFile, '--method', 'ln', '--steps', '1', '--out', join(badDir, 'run')], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /example '7': image file not found/);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'one clear line, no stack');
  });

  it('a corrupt image fails the batch that holds it, naming the example', async () => {
    const only = join(badDir, 'corrupt.json');
    writeFileSync(only, JSON.stringify([RECORDS[0], { ...RECORDS[1]!, qid: 8, image_name: 'corrupt.png' }]));
    const data = await openTrainingData(only, { model, modelPath: modelDir, images: badImages });
    await assert.rejects(async () => data.batch([0, 1]), /corrupt\.json, line \d+, field 'image': example '8': .*corrupt\.png: cannot decode image/);
  });

  it('--skip-bad leaves out the missing and the corrupt image\'s examples and says how many', async () => {
    const warnings: string[] = [];
    const data = await openTrainingData(badFile, { model, modelPath: modelDir, skipBad: true, warn: (l) => warnings.push(l) });
    assert.equal(data.size, RECORDS.length);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /--skip-bad: skipped 2 bad examples \(first: .*example '7': image file not found/);
    assert.match(data.describe(), /2 skipped/);
    const out = join(badDir, 'skip');
    const stdout = execFileSync(process.execPath, [cli, 'train', '--model', modelDir, '--data', badFile, '--method', 'ln', '--steps', '1', '--batch-size', '8', '--skip-bad', '--out', out], { encoding: 'utf8' });
    assert.match(stdout, /skipped 2 bad examples/);
    assert.ok(existsSync(join(out, 'trainable.safetensors')));
  });

  it('the wrong --task, a wrong image folder and a classification file are refused clearly', async () => {
    await assert.rejects(openTrainingData(dataFile, { model, modelPath: modelDir, images, task: 'classify' }), /--task classify, but the file holds VQA data \(vqa-rad\)/);
    await assert.rejects(openTrainingData(dataFile, { model, modelPath: modelDir, images: work }), /none of the 4 images exists under .*; pass the image folder with --images DIR/);
    const csv = join(work, 'labels.csv');
    writeFileSync(csv, 'path,Effusion\nsynpic1.png,1\n');
    await assert.rejects(openTrainingData(csv, { model, modelPath: modelDir, images }), /classification data cannot train a LLaVA model/);
  });
});
