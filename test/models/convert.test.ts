// `medtune convert` for checkpoints whose architecture is known: the directory it writes loads
// here and, where transformers can represent the model, in transformers (checked by loading it
// there and comparing outputs).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convertCheckpoint } from '../../lib/models/convert.ts';
import { loadModel, loadSafetensors, saveSafetensors } from '../../lib/models/index.ts';
import type { Tensor } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { REPO_ROOT } from '../helpers/fixtures.ts';
import { cachedFixture, runPython } from '../helpers/python.ts';

let mae: string;
let blip: string;
let scratch: string;
let maeRef: Record<string, Tensor>;
let blipRef: Record<string, Tensor>;

/** Runs transformers on a directory (scripts/python/hf_forward.py) and returns its outputs. */
async function transformersForward(dir: string, inputs: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const inFile = join(scratch, `${Math.random().toString(36).slice(2)}-in.safetensors`);
  const outFile = inFile.replace('-in.', '-out.');
  await saveSafetensors(inFile, inputs);
  runPython('hf_forward.py', [dir, inFile, outFile]);
  return (await loadSafetensors(outFile)).tensors;
}

describe('medtune convert: config.json for known layouts', () => {
  before(async () => {
    mae = cachedFixture('mae-pth', 'make_mae_pth_fixtures.py', [], { dependsOn: ['timm_vit_reference.py'] });
    blip = cachedFixture('blip', 'make_blip_fixtures.py', [], { dependsOn: ['blip_reference_fix.py'] });
    maeRef = (await loadSafetensors(join(mae, 'reference.safetensors'))).tensors;
    blipRef = (await loadSafetensors(join(blip, 'reference.safetensors'))).tensors;
    scratch = mkdtempSync(join(tmpdir(), 'medtune-convert-model-'));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('a timm ViT: timm config.json inferred from the keys; the directory loads here with the same logits', async () => {
    const out = join(scratch, 'vit-timm');
    const r = await convertCheckpoint(join(mae, 'vit_tiny_d1.pth'), out);
    assert.equal(r.format, 'source');
    const config = JSON.parse(readFileSync(r.config!, 'utf8'));
    assert.equal(config.architecture, 'vit_tiny_patch16_32');
    assert.equal(config.model_args.num_heads, 3);
    const model = await loadModel(out);
    const logits = (await model.forward({ pixel_values: maeRef['pixel_values']! }, { grad: false }))['logits']!;
    assertClose(logits.toTypedArray(), maeRef['tiny_logits']!.toTypedArray(), { atol: 1e-4, rtol: 0 });
    model.dispose();
  });

  it('--format hf: a token-pooling timm ViT becomes ViTForImageClassification that transformers loads (same logits)', async () => {
    const out = join(scratch, 'vit-hf');
    const r = await convertCheckpoint(join(mae, 'vit_tiny_d1.pth'), out, { format: 'hf' });
    assert.equal(r.architecture, 'ViTForImageClassification');
    const hf = await transformersForward(out, { pixel_values: maeRef['pixel_values']! });
    assertClose(hf['logits']!.toTypedArray(), maeRef['tiny_logits']!.toTypedArray(), { atol: 1e-4, rtol: 0, message: 'transformers on the converted directory' });
    const model = await loadModel(out);
    assert.equal(model.architecture, 'ViTForImageClassification');
    model.dispose();
  });

  it("MAE-style fine-tuning (avg pooling + fc_norm) is refused for transformers' layout, with the reason", async () => {
    await assert.rejects(convertCheckpoint(join(mae, 'mae_pretrain.pth'), join(scratch, 'mae-hf'), { format: 'hf', config: join(mae, 'finetune.json') }),
      /transformers cannot represent this ViT as ViTModel: it pools 'avg' with fc_norm.*--format source/);
    assert.equal(existsSync(join(scratch, 'mae-hf', 'model.safetensors')), false);
  });

  it('an MAE checkpoint of a non-standard width: safetensors and a note without --config; with it, a directory that loads', async () => {
    const bare = await convertCheckpoint(join(mae, 'mae_pretrain.pth'), join(scratch, 'mae-bare'));
    assert.equal(bare.config, null);
    assert.match(bare.notes[0]!, /no config\.json: the architecture of this timm-vit layout is not known; pass --config/);
    const out = join(scratch, 'mae');
    const r = await convertCheckpoint(join(mae, 'mae_pretrain.pth'), out, { config: join(mae, 'finetune.json') });
    assert.equal(r.format, 'source');
    const model = await loadModel(out);
    assert.deepEqual(model.loadReport.adapted, ['pos_embed: 2x2 -> 4x4 patch grid (bicubic)']);
    assert.equal(model.loadReport.ignored?.length, 9, 'the MAE decoder, kept in the file, is ignored on load');
    const pooled = (await model.forward({ pixel_values: maeRef['pixel_values']! }, { grad: false }))['pooler_output']!;
    assertClose(pooled.toTypedArray(), maeRef['pooler_output']!.toTypedArray(), { atol: 1e-4, rtol: 0 });
    model.dispose();
  });

  it("BLIP's .pth becomes a BlipForQuestionAnswering directory: transformers loads it, medtune keeps BLIP's loss", async () => {
    const out = join(scratch, 'blip');
    const r = await convertCheckpoint(join(blip, 'original_vqa.pth'), out, { config: join(blip, 'config_original.json') });
    assert.deepEqual([r.format, r.architecture], ['hf', 'BlipForQuestionAnswering']);
    const config = JSON.parse(readFileSync(r.config!, 'utf8'));
    assert.equal(config.decoder_loss, 'blip');
    assert.equal(config.text_config.label_smoothing, 0.1);
    const inputs = { pixel_values: blipRef['pixel_values']!, input_ids: blipRef['input_ids']!, attention_mask: blipRef['attention_mask']!, labels: blipRef['decoder_input_ids']! };
    const hf = await transformersForward(out, inputs);
    const model = await loadModel(out);
    assert.equal(model.architecture, 'BlipForQuestionAnswering');
    const batch = { ...inputs, decoder_attention_mask: blipRef['decoder_attention_mask']!, labels: blipRef['labels']! };
    const ours = await model.forward(batch, { grad: false });
    assertClose(ours['logits']!.toTypedArray(), blipRef['logits']!.toTypedArray(), { atol: 1e-4, rtol: 0, message: 'logits after conversion' });
    assertClose(ours['loss']!.item(), blipRef['blip_loss']!.item(), { atol: 1e-5, rtol: 1e-5, message: "BLIP's loss" });
    assertClose(hf['last_hidden_state']!.toTypedArray(), blipRef['image_embeds']!.toTypedArray(), { atol: 1e-4, rtol: 0, message: 'transformers: vision' });
    // transformers' loss on the converted directory (mean, smoothing 0.1) is medtune's 'transformers' loss.
    const asTransformers = await loadModel(out, { configOverrides: { decoder_loss: 'transformers' } });
    const theirs = await asTransformers.forward(inputs, { grad: false });
    assertClose(theirs['loss']!.item(), hf['loss']!.item(), { atol: 1e-5, rtol: 1e-5, message: 'transformers loss on the converted directory' });
    model.dispose();
    asTransformers.dispose();
  });

  it('the CLI prints where config.json went', () => {
    const out = join(scratch, 'cli');
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/medtune.js'), 'convert', join(mae, 'vit_tiny_d1.pth'), '--out', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /layout: timm-vit/);
    assert.match(r.stdout, /config .*config\.json \(vit_tiny_patch16_32, the checkpoint's own layout\)/);
    const bad = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/medtune.js'), 'convert', join(mae, 'vit_tiny_d1.pth'), '--out', join(scratch, 'x'), '--format', 'onnx'], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--format must be auto, source or hf, got 'onnx'/);
  });
});
