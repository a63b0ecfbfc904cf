// BLIP-style batches from data in the public layouts (VQA-RAD JSON, IU-Xray annotation.json)
// against what Salesforce BLIP's own preprocessing makes of the same files: pre_question /
// pre_caption, [ENC] / [DEC] token ids from the BERT tokenizer, padding, -100 labels, bicubic
// resize + CLIP normalisation (scripts/python/make_blip_fixtures.py).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { blipPreprocessor, blipReportLoader, blipVqaLoader } from '../../lib/data/blip-batches.ts';
import { readReportAnnotations } from '../../lib/data/formats/report.ts';
import { readVqaRad } from '../../lib/data/formats/vqa.ts';
import { BlipTextBuilder, blipTokenIds, preCaption, preQuestion } from '../../lib/data/text/blip-examples.ts';
import { loadTokenizer } from '../../lib/data/text/tokenizer.ts';
import { loadSafetensors } from '../../lib/models/index.ts';
import type { Tensor } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture } from '../helpers/python.ts';

let dir: string;
let ref: Record<string, Tensor>;
let info: { questions: string[]; captions: string[]; plain_added: number[] };

function sameInts(a: Tensor, b: Tensor, what: string): void {
  assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  assert.deepEqual(a.toArray(), b.toArray(), what);
}

describe('BLIP batches from VQA-RAD and IU-Xray files', () => {
  before(async () => {
    dir = cachedFixture('blip', 'make_blip_fixtures.py', [], { dependsOn: ['blip_reference_fix.py'] });
    ref = (await loadSafetensors(join(dir, 'data.reference.safetensors'))).tensors;
    info = JSON.parse(readFileSync(join(dir, 'data.json'), 'utf8'));
  });

  it("pre_question and pre_caption as BLIP's data/utils.py", () => {
    const rad = readVqaRad(join(dir, 'data', 'VQA_RAD Dataset Public.json'), { split: 'train' }).examples;
    assert.deepEqual(rad.map((e) => preQuestion(e.conversations[0]!.value.replace('<image>\n', ''))), info.questions);
    const reports = readReportAnnotations(join(dir, 'data', 'annotation.json'), { split: 'train' }).examples;
    assert.deepEqual(reports.map((r) => `a picture of ${preCaption(r.report)}`), info.captions);
    assert.equal(preQuestion('a b c d', 2), 'a b');
  });

  it('VQA: [ENC] questions truncated to 35 tokens, [DEC] answers, -100 on pads, 480-px-style pixels', async () => {
    const examples = readVqaRad(join(dir, 'data', 'VQA_RAD Dataset Public.json'), { split: 'train' }).examples;
    const text = new BlipTextBuilder(loadTokenizer(join(dir, 'tokenizer')));
    const loader = blipVqaLoader(examples, text, { imageRoot: join(dir, 'data', 'images'), preprocessor: blipPreprocessor(32), batchSize: 3 });
    for await (const batch of loader.epoch(0)) {
      for (const k of ['input_ids', 'attention_mask', 'decoder_input_ids', 'decoder_attention_mask', 'labels']) sameInts(batch[k]!, ref[k]!, k);
      assertClose(batch['pixel_values']!.toTypedArray(), ref['pixel_values']!.toTypedArray(), { atol: 1e-5, rtol: 0, message: 'pixel_values' });
      assert.equal(batch['input_ids']!.shape[1], 35, 'the long question is truncated to 35 tokens');
    }
  });

  it('reports: [DEC] + prompt (unsupervised) + report, truncated, first view of each study', async () => {
    const examples = readReportAnnotations(join(dir, 'data', 'annotation.json'), { split: 'train' }).examples;
    const text = new BlipTextBuilder(loadTokenizer(join(dir, 'tokenizer')), { prompt: 'a picture of ', captionMaxLength: 12 });
    const loader = blipReportLoader(examples, text, { imageRoot: join(dir, 'data', 'images'), preprocessor: blipPreprocessor(32), batchSize: 2 });
    for await (const batch of loader.epoch(0)) {
      sameInts(batch['decoder_input_ids']!, ref['report_decoder_input_ids']!, 'decoder_input_ids');
      sameInts(batch['decoder_attention_mask']!, ref['report_decoder_attention_mask']!, 'decoder_attention_mask');
      sameInts(batch['labels']!, ref['report_labels']!, 'labels');
      assertClose(batch['pixel_values']!.toTypedArray(), ref['report_pixel_values']!.toTypedArray(), { atol: 1e-5, rtol: 0 });
    }
    assert.deepEqual(await text.decoderPrompt(), (ref['report_decoder_input_ids']!.toArray() as number[][])[0]!.slice(0, 4));
  });

  it("a plain BERT tokenizer gets BLIP's [DEC] and [ENC] after its vocabulary, as init_tokenizer adds them", () => {
    const ids = blipTokenIds(loadTokenizer(join(dir, 'bert_plain')));
    assert.deepEqual([ids.dec, ids.enc], info.plain_added);
  });
});
