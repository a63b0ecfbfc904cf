// Evaluating the BLIP (MISS-style) model: answers to VQA-RAD test questions by beam search (3
// beams, max_length 10, min_length 1) and reports from images, identical to transformers'
// generate() on the same weights and BLIP-preprocessed inputs; MISS-style exact-match accuracy
// per answer type beside LLaVA-Med's scores.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { vqaAccuracy } from '../../lib/eval/vqa-accuracy.ts';
import { loadModel } from '../../lib/models/index.ts';
import { BlipDataset } from '../../lib/train/blip-data.ts';
import { evaluateBlip } from '../../lib/eval/run/blip.ts';
import { cachedFixture } from '../helpers/python.ts';

let fixture: string;
let info: { test_answers: string[]; test_references: string[]; report_predictions: string[] };

describe('BLIP evaluation', () => {
  before(() => {
    fixture = cachedFixture('blip', 'make_blip_fixtures.py', [], { dependsOn: ['blip_reference_fix.py'] });
    info = JSON.parse(readFileSync(join(fixture, 'data.json'), 'utf8'));
  });

  it('MISS-style accuracy: exact match per answer type, case and spacing ignored', () => {
    const a = vqaAccuracy([
      { prediction: 'Yes', answer: 'yes', answerType: 'CLOSED' },
      { prediction: 'no', answer: 'yes', answerType: 'CLOSED' },
      { prediction: ' right  upper lobe', answer: 'right upper lobe', answerType: 'OPEN' },
      { prediction: 'left lobe', answer: 'right upper lobe', answerType: 'OPEN' },
      { prediction: 'the liver', answer: 'liver', answerType: 'OPEN' },
    ]);
    assert.deepEqual(a, { count: { closed: 2, open: 3, total: 5 }, closed: 0.5, open: 1 / 3, overall: 2 / 5 });
  });

  it("VQA-RAD test questions: answers identical to transformers' generate(num_beams=3, max_length=10, min_length=1)", async () => {
    const model = await loadModel(join(fixture, 'original_vqa.pth'), { config: join(fixture, 'config_original.json') });
    const data = BlipDataset.open(join(fixture, 'data', 'VQA_RAD Dataset Public.json'), model, { tokenizer: join(fixture, 'tokenizer'), split: 'test' });
    const r = await evaluateBlip(model, data, { batchSize: 2 });
    assert.deepEqual(r.predictions.map((p) => p.prediction), info.test_answers);
    assert.deepEqual(r.predictions.map((p) => p.reference), info.test_references);
    const expectedRight = info.test_answers.map((a, i) => (a === info.test_references[i] ? 1 : 0));
    assert.deepEqual(r.accuracy!.count, { closed: 1, open: 1, total: 2 });
    assert.equal(r.accuracy!.overall, (expectedRight[0]! + expectedRight[1]!) / 2);
    assert.equal(r.llavaMed!.count.total, 2, "LLaVA-Med's scores beside");
    model.dispose();
  });

  it('report generation from the image with a prompt, scored with BLEU / ROUGE-L / CIDEr', async () => {
    const model = await loadModel(join(fixture, 'original_vqa.pth'), { config: join(fixture, 'config_original.json') });
    const data = BlipDataset.open(join(fixture, 'data', 'annotation.json'), model, { tokenizer: join(fixture, 'tokenizer'), split: 'train', prompt: 'a picture of ' });
    const r = await evaluateBlip(model, data, { batchSize: 2 });
    assert.deepEqual(r.predictions.map((p) => p.prediction), info.report_predictions);
    assert.ok(r.reports && Number.isFinite(r.reports.rougeL));
    model.dispose();
  });
});
