// BLIP (the MISS-style Med-VQA model) against transformers: BlipForQuestionAnswering and
// BlipForConditionalGeneration made tiny by scripts/python/make_blip_fixtures.py, and the same
// weights saved by torch.save in Salesforce BLIP's own layout. Logits, the decoder's losses
// (BLIP's and transformers'), beam-search answers and generated reports.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { decode, loadModel, loadSafetensors, readSafetensorsHeader, type Model } from '../../lib/models/index.ts';
import type { Tensor } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture } from '../helpers/python.ts';

interface Info {
  dec: number;
  enc: number;
  sep: number;
  pad: number;
  vqa_generate: number[][];
  vqa_greedy: number[][];
  report_generate: number[][];
  caption_generate: number[][];
}

let dir: string;
let ref: Record<string, Tensor>;
let info: Info;

/** Tokens through the first EOS after the prompt; transformers pads finished beams with EOS when pad is 0, medtune with pad. */
function throughEos(rows: number[][], eos: number, promptLength = 1): number[][] {
  return rows.map((r) => {
    const end = r.indexOf(eos, promptLength);
    return end < 0 ? r : r.slice(0, end + 1);
  });
}

function close(a: Tensor, b: Tensor, message: string, atol = 1e-4): void {
  assert.deepEqual(a.shape, b.shape, `${message}: shape`);
  assertClose(a.toTypedArray(), b.toTypedArray(), { atol, rtol: 0, message });
}

const vqaInputs = () => ({ pixel_values: ref['pixel_values']!, input_ids: ref['input_ids']!, attention_mask: ref['attention_mask']! });
// blip_vqa.py's training batch: answers padded, with their mask, pads labelled -100.
const trainingBatch = () => ({
  ...vqaInputs(), decoder_input_ids: ref['decoder_input_ids']!, decoder_attention_mask: ref['decoder_attention_mask']!, labels: ref['labels']!,
});

async function checkVqa(model: Model): Promise<void> {
  const out = await model.forward(trainingBatch(), { grad: false });
  close(out['image_embeds']!, ref['image_embeds']!, 'image embeddings');
  close(out['question_embeds']!, ref['question_embeds']!, 'question states');
  close(out['logits']!, ref['logits']!, 'decoder logits');
  const beams = await decode(model, vqaInputs(), { numBeams: 3, maxLength: 10, minLength: 1 });
  assert.deepEqual(throughEos(beams.sequences.toArray() as number[][], info.sep), throughEos(info.vqa_generate, info.sep), 'beam search (3 beams, max length 10)');
  const greedy = await decode(model, vqaInputs(), { numBeams: 1, maxLength: 10 });
  assert.deepEqual(throughEos(greedy.sequences.toArray() as number[][], info.sep), throughEos(info.vqa_greedy, info.sep), 'greedy');
}

describe('BLIP parity with transformers', () => {
  before(async () => {
    dir = cachedFixture('blip', 'make_blip_fixtures.py', [], { dependsOn: ['blip_reference_fix.py'] });
    ref = (await loadSafetensors(join(dir, 'reference.safetensors'))).tensors;
    info = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as Info;
  });

  it('BlipForQuestionAnswering: embeddings and logits within 1e-4, answers identical to generate(num_beams=3, max_length=10)', async () => {
    const model = await loadModel(join(dir, 'hf_vqa'));
    assert.equal(model.architecture, 'BlipForQuestionAnswering');
    assert.deepEqual(model.loadReport, { unexpected: [], initialized: [] });
    await checkVqa(model);
    // transformers' own loss: labels are also the decoder's input; mean over every label token.
    const out = await model.forward({ ...vqaInputs(), labels: ref['decoder_input_ids']! }, { grad: false });
    assertClose(out['loss']!.item(), ref['hf_loss']!.item(), { atol: 1e-5, rtol: 1e-5, message: 'transformers loss' });
    const names = model.parameters().map((p) => p.name).sort();
    const keys = readSafetensorsHeader(join(dir, 'hf_vqa', 'model.safetensors')).tensors.map((t) => t.name).sort();
    assert.deepEqual(names, keys, 'parameter names are the checkpoint keys');
    model.dispose();
  });

  it("questions of different lengths: the decoder does not attend the padding (BLIP's masking; transformers 5.18 drops it)", async () => {
    assert.equal((info as unknown as { transformers_ignores_question_padding: boolean }).transformers_ignores_question_padding, true);
    const model = await loadModel(join(dir, 'original_vqa.pth'), { config: join(dir, 'config_original.json') });
    const out = await model.forward({ ...trainingBatch(), input_ids: ref['padded_input_ids']!, attention_mask: ref['padded_attention_mask']! }, { grad: false });
    close(out['logits']!, ref['padded_logits']!, 'logits with padded questions');
    assertClose(out['loss']!.item(), ref['padded_blip_loss']!.item(), { atol: 1e-5, rtol: 1e-5, message: 'BLIP loss' });
    model.dispose();
  });

  it("BLIP's decoder loss: label smoothing 0.1, summed per answer, averaged over questions", async () => {
    const model = await loadModel(join(dir, 'hf_vqa'), { configOverrides: { decoder_loss: 'blip' } });
    const out = await model.forward(trainingBatch(), { grad: false });
    assertClose(out['loss']!.item(), ref['blip_loss']!.item(), { atol: 1e-5, rtol: 1e-5, message: 'BLIP loss' });
    model.dispose();
  });

  it("the same weights in BLIP's .pth layout (torch.save, tied storages, position_ids buffers) give the same numbers", async () => {
    const model = await loadModel(join(dir, 'original_vqa.pth'), { config: join(dir, 'config_original.json') });
    assert.equal(model.architecture, 'BLIP_VQA');
    assert.equal(model.spec.family === 'blip' && model.spec.layout, 'original');
    assert.deepEqual(model.loadReport, { unexpected: [], initialized: [] }, 'buffers and tied names are known, not unexpected');
    assert.ok(model.parameters().some((p) => p.name === 'visual_encoder.blocks.1.attn.qkv.weight'));
    await checkVqa(model);
    // BLIP's layout defaults to BLIP's loss.
    const out = await model.forward(trainingBatch(), { grad: false });
    assertClose(out['loss']!.item(), ref['blip_loss']!.item(), { atol: 1e-5, rtol: 1e-5, message: 'BLIP loss' });
    model.dispose();
  });

  it('report generation: the VQA decoder reading the image (captioning form), beam search with min length and repetition penalty', async () => {
    const model = await loadModel(join(dir, 'original_vqa.pth'), { config: join(dir, 'config_original.json') });
    const batch = { pixel_values: ref['pixel_values']!, decoder_input_ids: ref['report_input_ids']!, labels: ref['report_labels']!,
      decoder_attention_mask: ref['report_input_ids']!.ne(0) };
    const out = await model.forward(batch, { grad: false });
    assert.equal(out['question_embeds'], undefined, 'no question: the decoder reads the image');
    close(out['logits']!, ref['report_logits']!, 'report logits');
    assertClose(out['loss']!.item(), ref['report_blip_loss']!.item(), { atol: 1e-5, rtol: 1e-5, message: 'captioning loss (mean, smoothing 0.1)' });
    const gen = await decode(model, { pixel_values: ref['pixel_values']! }, { numBeams: 3, maxLength: 16, minLength: 6, repetitionPenalty: 1.3 });
    assert.deepEqual(throughEos(gen.sequences.toArray() as number[][], info.sep), throughEos(info.report_generate, info.sep));
    model.dispose();
  });

  it('BlipForConditionalGeneration: logits, loss and prompted beam search', async () => {
    const model = await loadModel(join(dir, 'hf_caption'));
    assert.equal(model.architecture, 'BlipForConditionalGeneration');
    const out = await model.forward({
      pixel_values: ref['pixel_values']!, input_ids: ref['caption_input_ids']!, attention_mask: ref['caption_attention_mask']!, labels: ref['caption_input_ids']!,
    }, { grad: false });
    close(out['logits']!, ref['caption_logits']!, 'caption logits');
    assertClose(out['loss']!.item(), ref['caption_loss']!.item(), { atol: 1e-5, rtol: 1e-5, message: 'caption loss' });
    const prompt = ref['caption_prompt_ids']!;
    const gen = await decode(model, { pixel_values: ref['pixel_values']!, input_ids: prompt }, { numBeams: 3, maxLength: 14 });
    const promptLength = prompt.shape[1]! - 1;
    assert.deepEqual(throughEos(gen.sequences.toArray() as number[][], info.sep, promptLength), throughEos(info.caption_generate, info.sep, promptLength));
    model.dispose();
  });

  it("a vision tower pre-trained at another image size: position embeddings interpolated as BLIP's load_checkpoint does", async () => {
    const model = await loadModel(join(dir, 'pretrain_224.pth'), { config: join(dir, 'config_original.json') });
    assert.deepEqual(model.loadReport.adapted, ['visual_encoder.pos_embed: 2x2 -> 4x4 patch grid (bicubic)']);
    close(model.parameter('visual_encoder.pos_embed'), ref['interpolated_pos_embed']!, 'interpolated pos_embed', 1e-6);
    model.dispose();
  });

  it('kinds and parts: every LayerNorm is a norm, self- and cross-attention projections attention, FFNs mlp; vision / language / decoder', async () => {
    const model = await loadModel(join(dir, 'original_vqa.pth'), { config: join(dir, 'config_original.json') });
    const byName = new Map(model.parameters().map((p) => [p.name, p]));
    const expect = (name: string, kind: string, part: string) => {
      const p = byName.get(name);
      assert.ok(p, `${name} exists`);
      assert.deepEqual([p.kind, p.part], [kind, part], name);
    };
    expect('visual_encoder.cls_token', 'other', 'vision');
    expect('visual_encoder.pos_embed', 'position_embedding', 'vision');
    expect('visual_encoder.patch_embed.proj.weight', 'patch_embedding', 'vision');
    expect('visual_encoder.blocks.0.norm1.weight', 'norm', 'vision');
    expect('visual_encoder.blocks.0.attn.qkv.weight', 'attention', 'vision');
    expect('visual_encoder.blocks.0.attn.proj.bias', 'attention', 'vision');
    expect('visual_encoder.blocks.1.mlp.fc2.weight', 'mlp', 'vision');
    expect('visual_encoder.norm.bias', 'norm', 'vision');
    expect('text_encoder.embeddings.word_embeddings.weight', 'embedding', 'language');
    expect('text_encoder.embeddings.position_embeddings.weight', 'position_embedding', 'language');
    expect('text_encoder.embeddings.LayerNorm.weight', 'norm', 'language');
    expect('text_encoder.encoder.layer.0.attention.self.query.weight', 'attention', 'language');
    expect('text_encoder.encoder.layer.0.attention.output.LayerNorm.bias', 'norm', 'language');
    expect('text_encoder.encoder.layer.0.crossattention.self.value.weight', 'attention', 'language');
    expect('text_encoder.encoder.layer.1.crossattention.output.dense.weight', 'attention', 'language');
    expect('text_encoder.encoder.layer.1.crossattention.output.LayerNorm.weight', 'norm', 'language');
    expect('text_encoder.encoder.layer.1.intermediate.dense.weight', 'mlp', 'language');
    expect('text_encoder.encoder.layer.1.output.dense.bias', 'mlp', 'language');
    expect('text_encoder.encoder.layer.1.output.LayerNorm.weight', 'norm', 'language');
    expect('text_decoder.bert.embeddings.word_embeddings.weight', 'embedding', 'decoder');
    expect('text_decoder.bert.encoder.layer.0.crossattention.self.key.weight', 'attention', 'decoder');
    expect('text_decoder.bert.encoder.layer.0.output.LayerNorm.bias', 'norm', 'decoder');
    expect('text_decoder.cls.predictions.transform.dense.weight', 'head', 'decoder');
    expect('text_decoder.cls.predictions.transform.LayerNorm.weight', 'norm', 'decoder');
    expect('text_decoder.cls.predictions.bias', 'head', 'decoder');
    assert.ok(!byName.has('text_decoder.cls.predictions.decoder.weight'), 'tied to the word embeddings');
    const kinds = new Set(model.parameters().map((p) => p.kind));
    assert.ok(!kinds.has('adapter'));
    model.dispose();
  });

  it('save() writes a directory transformers loads (float fields stay floats for its strict configs)', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { saveSafetensors } = await import('../../lib/models/index.ts');
    const { runPython } = await import('../helpers/python.ts');
    const tmp = mkdtempSync(join(tmpdir(), 'medtune-blip-save-'));
    try {
      const model = await loadModel(join(dir, 'original_vqa.pth'), { config: join(dir, 'config_original.json') });
      await model.save(join(tmp, 'original'));
      model.dispose();
      // BLIP's own layout reloads here (the keys say which layout it is) ...
      const reloaded = await loadModel(join(tmp, 'original'));
      assert.equal(reloaded.architecture, 'BLIP_VQA');
      close((await reloaded.forward(trainingBatch(), { grad: false }))['logits']!, ref['logits']!, 'reloaded');
      reloaded.dispose();
      const hf = await loadModel(join(dir, 'hf_vqa'));
      await hf.save(join(tmp, 'hf'));
      hf.dispose();
      // ... and transformers' layout loads in transformers.
      await saveSafetensors(join(tmp, 'in.safetensors'), { ...vqaInputs(), labels: ref['decoder_input_ids']! });
      runPython('hf_forward.py', [join(tmp, 'hf'), join(tmp, 'in.safetensors'), join(tmp, 'out.safetensors')]);
      const out = (await loadSafetensors(join(tmp, 'out.safetensors'))).tensors;
      close(out['last_hidden_state']!, ref['image_embeds']!, 'transformers on the saved directory');
      assertClose(out['loss']!.item(), ref['hf_loss']!.item(), { atol: 1e-5, rtol: 1e-5, message: 'transformers loss' });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('errors name what is missing', async () => {
    const model = await loadModel(join(dir, 'hf_vqa'));
    await assert.rejects(model.forward({ input_ids: ref['input_ids']! }), /needs 'pixel_values'/);
    await assert.rejects(model.forward(vqaInputs()), /needs 'labels' or 'decoder_input_ids'/);
    await assert.rejects(decode(model, vqaInputs(), { numBeams: 3, maxLength: 1 }), /maxLength 1 leaves no room after the 1-token prompt/);
    await assert.rejects(model.generate(vqaInputs()), /BLIP models decode .* with decode\(model, batch/);
    model.dispose();
  });
});
