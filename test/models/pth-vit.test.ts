// MAE / MRM-style torch.save checkpoints into the ViT classifier, as MED-PEFT fine-tunes them:
// timm keys under 'model', the MAE decoder ignored and reported, position embeddings interpolated
// to the fine-tuning image size (MAE's interpolate_pos_embed), fc_norm and head initialised. The
// reference is MAE's main_finetune.py procedure run by scripts/python/make_mae_pth_fixtures.py.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadModel, loadSafetensors } from '../../lib/models/index.ts';
import type { Tensor } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture } from '../helpers/python.ts';

let dir: string;
let ref: Record<string, Tensor>;

describe('ViT from MAE / MED-PEFT .pth checkpoints', () => {
  before(async () => {
    dir = cachedFixture('mae-pth', 'make_mae_pth_fixtures.py', [], { dependsOn: ['timm_vit_reference.py'] });
    ref = (await loadSafetensors(join(dir, 'reference.safetensors'))).tensors;
  });

  it('decoder ignored and reported, pos_embed interpolated 2x2 -> 4x4, fc_norm + head fresh; features equal main_finetune.py', async () => {
    const model = await loadModel(join(dir, 'mae_pretrain.pth'), { config: join(dir, 'finetune.json'), seed: 1 });
    const r = model.loadReport;
    assert.deepEqual(r.ignored?.slice().sort(), [
      'decoder_blocks.0.attn.qkv.weight', 'decoder_blocks.0.mlp.fc1.weight', 'decoder_blocks.0.norm1.weight', 'decoder_embed.bias',
      'decoder_embed.weight', 'decoder_norm.weight', 'decoder_pos_embed', 'decoder_pred.weight', 'mask_token',
    ]);
    assert.deepEqual(r.unexpected.slice().sort(), ['norm.bias', 'norm.weight'], 'MAE fine-tuning replaces norm by fc_norm');
    assert.deepEqual(r.initialized, ['fc_norm.bias', 'fc_norm.weight', 'head.bias', 'head.weight']);
    assert.deepEqual(r.adapted, ['pos_embed: 2x2 -> 4x4 patch grid (bicubic)']);
    assertClose(model.parameter('pos_embed').toTypedArray(), ref['pos_embed']!.toTypedArray(), { atol: 1e-6, rtol: 0, message: 'pos_embed' });
    const out = await model.forward({ pixel_values: ref['pixel_values']! }, { grad: false });
    assertClose(out['last_hidden_state']!.toTypedArray(), ref['last_hidden_state']!.toTypedArray(), { atol: 1e-4, rtol: 0, message: 'tokens' });
    assertClose(out['pooler_output']!.toTypedArray(), ref['pooler_output']!.toTypedArray(), { atol: 1e-4, rtol: 0, message: 'fc_norm features' });
    assert.deepEqual(out['logits']!.shape, [2, 3]);
    model.dispose();
  });

  it('config overrides change single fields (num_classes)', async () => {
    const model = await loadModel(join(dir, 'mae_pretrain.pth'), { config: join(dir, 'finetune.json'), configOverrides: { num_classes: 14 } });
    assert.deepEqual(model.parameters().find((p) => p.name === 'head.weight')?.shape, [14, 32]);
    model.dispose();
  });

  it("a bare state dict of one of timm's widths: the architecture is read off the keys", async () => {
    const model = await loadModel(join(dir, 'vit_tiny_d1.pth'));
    assert.equal(model.architecture, 'vit_tiny_patch16_32');
    assert.deepEqual(model.loadReport, { unexpected: [], initialized: [] });
    const out = await model.forward({ pixel_values: ref['pixel_values']! }, { grad: false });
    assertClose(out['logits']!.toTypedArray(), ref['tiny_logits']!.toTypedArray(), { atol: 1e-4, rtol: 0, message: 'logits' });
    model.dispose();
  });

  it('a preset of another width is a shape error naming the file and tensor; unknown widths ask for a config', async () => {
    await assert.rejects(loadModel(join(dir, 'mae_pretrain.pth'), { config: 'vit-base-patch16' }),
      /mae_pretrain\.pth: tensor '(cls_token|pos_embed|patch_embed\.proj\.weight)' has shape \[.*32.*\] but the model built from config\.json expects \[.*768.*\]/);
    await assert.rejects(loadModel(join(dir, 'mae_pretrain.pth')), /cannot be read off the weights; pass config \(a preset: vit-tiny-patch16, .*blip-vqa-base/);
    await assert.rejects(loadModel(join(dir, 'mae_pretrain.pth'), { config: 'vit-gigantic' }), /'vit-gigantic' is neither a preset .* nor a \.json config file/);
  });
});
