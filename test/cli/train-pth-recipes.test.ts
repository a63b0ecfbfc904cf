// The papers' recipes end to end through `medtune train` on torch.save checkpoints:
//  - LN-tuning of the BLIP (MISS-style) VQA model from Salesforce BLIP's .pth layout on VQA-RAD
//    files: the same 5 losses as the PyTorch reference (scripts/python/blip_train_reference.py);
//  - the LoRA paper's ViT recipe from an MAE pre-training .pth: LoRA on the q and v thirds of the
//    fused qkv, head + fc_norm trained, layer-wise lr decay, multi-label BCE.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel, readSafetensorsHeader } from '../../lib/models/index.ts';
import { BlipDataset } from '../../lib/train/blip-data.ts';
import { assertClose } from '../helpers/close.ts';
import { REPO_ROOT } from '../helpers/fixtures.ts';
import { cachedFixture } from '../helpers/python.ts';

let blip: string;
let mae: string;
let scratch: string;

function medtune(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/medtune.js'), ...args], { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function trainLog(out: string): { loss: number; grad_norm: number; lr: number }[] {
  return readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.type === 'train');
}

describe('medtune train on .pth checkpoints (the papers\' recipes)', () => {
  before(() => {
    blip = cachedFixture('blip', 'make_blip_fixtures.py', [], { dependsOn: ['blip_reference_fix.py'] });
    mae = cachedFixture('mae-pth', 'make_mae_pth_fixtures.py', [], { dependsOn: ['timm_vit_reference.py'] });
    scratch = mkdtempSync(join(tmpdir(), 'medtune-recipes-'));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('BLIP LN-tuning from a BLIP .pth on VQA-RAD: the PyTorch reference losses, LayerNorm tensors saved', () => {
    const ref = JSON.parse(readFileSync(join(cachedFixture('blip-ln-reference', 'blip_train_reference.py', [blip, 'ln', '5', '2', '1e-3'], { dependsOn: ['blip_reference_fix.py'] }), 'result.json'), 'utf8')) as { steps: { loss: number }[] };
    const out = join(scratch, 'blip-ln');
    const r = medtune('train', '--model', join(blip, 'original_vqa.pth'), '--arch', join(blip, 'config_original.json'), '--tokenizer', join(blip, 'tokenizer'),
      '--data', join(blip, 'data', 'VQA_RAD Dataset Public.json'), '--split', 'train', '--method', 'ln',
      '--steps', '5', '--batch-size', '2', '--lr', '1e-3', '--schedule', 'constant', '--no-shuffle', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /trainable params: 1,280 \|\| all params: 86,816/);
    const log = trainLog(out);
    ref.steps.forEach((s, i) => assertClose(log[i]!.loss, s.loss, { atol: 0, rtol: 1e-4, message: `loss at step ${i + 1}` }));
    const saved = readdirTensors(out);
    assert.equal(saved.length, 40);
    assert.ok(saved.every((n) => /norm|LayerNorm/.test(n)), 'only LayerNorm tensors are saved');
    const config = JSON.parse(readFileSync(join(out, 'training_config.json'), 'utf8'));
    assert.equal(config.loss_scaling, 'batches');
  });

  it('report generation (IU-Xray annotation.json) trains the decoder through medtune train: step 1 is the forward loss', async () => {
    const out = join(scratch, 'blip-report');
    const args = ['--model', join(blip, 'original_vqa.pth'), '--arch', join(blip, 'config_original.json'), '--tokenizer', join(blip, 'tokenizer')];
    const r = medtune('train', ...args, '--data', join(blip, 'data', 'annotation.json'), '--split', 'train', '--method', 'lora', '--scope', 'decoder',
      '--steps', '2', '--batch-size', '2', '--no-shuffle', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(readFileSync(join(out, 'training_config.json'), 'utf8')).loss_scaling, 'tokens');
    // LoRA starts as a no-op (B = 0): step 1's loss is the untouched model's captioning loss.
    const model = await loadModel(join(blip, 'original_vqa.pth'), { config: join(blip, 'config_original.json') });
    const data = BlipDataset.open(join(blip, 'data', 'annotation.json'), model, { tokenizer: join(blip, 'tokenizer'), split: 'train' });
    const loss = (await model.forward(await data.batch([0, 1]), { grad: false }))['loss']!.item();
    assertClose(trainLog(out)[0]!.loss, loss, { atol: 0, rtol: 1e-5, message: 'step 1 loss' });
    model.dispose();
  });

  it("the LoRA paper's ViT recipe from an MAE .pth: qkv[q,v] LoRA, head + fc_norm, layer decay, PEFT adapter written", () => {
    const out = join(scratch, 'vit-lora');
    const r = medtune('train', '--model', join(mae, 'mae_pretrain.pth'), '--arch', join(mae, 'finetune.json'), '--data', join(mae, 'train.safetensors'),
      '--method', 'lora', '--lora-targets', 'qkv[q,v]', '--lora-r', '4', '--lora-alpha', '32', '--train-extra', 'head,fc_norm',
      '--layer-decay', '0.75', '--weight-decay', '0.05', '--no-decay', 'mae', '--lr', '1e-3', '--steps', '4', '--batch-size', '4', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    const adapterConfig = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    assert.equal(adapterConfig.r, 4);
    assert.equal(adapterConfig.lora_alpha, 32);
    assert.deepEqual([...adapterConfig.modules_to_save].sort(), ['fc_norm', 'head']);
    const tensors = readSafetensorsHeader(join(out, 'adapter_model.safetensors')).tensors.map((t) => t.name);
    assert.ok(tensors.some((n) => /blocks\.0\.attn\.qkv\.lora_A/.test(n)), 'LoRA on blocks.0.attn.qkv');
    const config = JSON.parse(readFileSync(join(out, 'training_config.json'), 'utf8'));
    const scales = new Set(config.param_groups.map((g: { lr_scale: number }) => g.lr_scale));
    assert.ok(scales.size > 2, `layer-wise lr decay gives several lr scales (${[...scales].join(', ')})`);
    assert.ok(trainLog(out).every((s) => Number.isFinite(s.loss)));
  });
});

function readdirTensors(out: string): string[] {
  const file = ['trainable.safetensors', 'model.safetensors'].map((f) => join(out, f)).find((f) => existsSync(f));
  assert.ok(file, `a trained-tensor file in ${out}`);
  return readSafetensorsHeader(file).tensors.map((t) => t.name);
}
