// Parameter groups: MAE's layer-wise lr decay and no-decay rules (hand-computed from
// util/lr_decay.py's definitions), the HF Trainer's no-decay names, and the data order.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tidy, zeros } from '../../lib/torch/index.ts';
import { accumulationWindows, epochOrder, microBatches, stepsPerEpoch } from '../../lib/train/data-order.ts';
import { buildParamGroups, countLayers, isNoDecay, layerId } from '../../lib/train/param-groups.ts';

describe('parameter groups', () => {
  it('layer ids and lr scales follow MAE param_groups_lrd (timm and HF ViT names)', () => tidy(() => {
    const timm: [string, number[]][] = [
      ['cls_token', [1, 1, 8]], ['pos_embed', [1, 5, 8]], ['patch_embed.proj.weight', [8, 3, 2, 2]], ['patch_embed.proj.bias', [8]],
      ['blocks.0.norm1.weight', [8]], ['blocks.0.attn.qkv.weight', [24, 8]], ['blocks.1.mlp.fc1.weight', [16, 8]], ['blocks.1.mlp.fc1.bias', [16]],
      ['fc_norm.weight', [8]], ['head.weight', [3, 8]], ['head.bias', [3]],
    ];
    const params = timm.map(([name, shape]) => ({ name, tensor: zeros(shape) }));
    assert.equal(countLayers(params.map((p) => p.name)), 2);
    const groups = buildParamGroups(params, { lr: 1e-3, weightDecay: 0.05, noDecay: 'mae', layerDecay: 0.75 });
    // num_layers = len(blocks) + 1 = 3; scale(i) = 0.75 ** (3 - i)
    assert.deepEqual(groups.map((g) => [g.name, g.lrScale, g.weightDecay, g.params.map((p) => p.name)]), [
      ['layer_0_no_decay', 0.75 ** 3, 0, ['cls_token', 'pos_embed', 'patch_embed.proj.bias']],
      ['layer_0_decay', 0.75 ** 3, 0.05, ['patch_embed.proj.weight']],
      ['layer_1_no_decay', 0.75 ** 2, 0, ['blocks.0.norm1.weight']],
      ['layer_1_decay', 0.75 ** 2, 0.05, ['blocks.0.attn.qkv.weight']],
      ['layer_2_decay', 0.75, 0.05, ['blocks.1.mlp.fc1.weight']],
      ['layer_2_no_decay', 0.75, 0, ['blocks.1.mlp.fc1.bias']],
      ['layer_3_no_decay', 1, 0, ['fc_norm.weight', 'head.bias']],
      ['layer_3_decay', 1, 0.05, ['head.weight']],
    ]);
    assert.equal(groups[0]!.lr, 1e-3 * 0.75 ** 3);
    assert.equal(layerId('vit.embeddings.patch_embeddings.projection.weight', 12), 0);
    assert.equal(layerId('vit.embeddings.cls_token', 12), 0);
    assert.equal(layerId('vit.encoder.layer.11.attention.attention.query.weight', 12), 12);
    assert.equal(layerId('vit.layernorm.weight', 12), 13);
    assert.equal(layerId('classifier.weight', 12), 13);
    assert.equal(layerId('model.layers.3.self_attn.q_proj.weight', 32), 4);
  }));

  it("the HF Trainer's no-decay rule: norms (by kind or name) and biases", () => tidy(() => {
    const p = (name: string, kind?: string) => ({ name, tensor: zeros([2]), ...(kind ? { kind } : {}) });
    const exempt = [
      p('vit.encoder.layer.0.layernorm_before.weight'), p('model.layers.0.input_layernorm.weight'), p('model.norm.weight'),
      p('vision_tower.vision_model.encoder.layers.0.layer_norm1.weight', 'norm'), p('classifier.bias'), p('x.q_norm.weight'),
    ];
    const decays = [p('model.layers.0.self_attn.q_proj.weight'), p('vision_tower.vision_model.encoder.layers.0.layer_norm1.weight'), p('normalizer.weight')];
    for (const x of exempt) assert.equal(isNoDecay(x, 'norm-bias'), true, x.name);
    for (const x of decays) assert.equal(isNoDecay(x, 'norm-bias'), false, x.name);
    const [only] = buildParamGroups([...exempt, ...decays], { lr: 0.1, weightDecay: 0.01, noDecay: 'none' });
    assert.equal(only!.params.length, 9);
    assert.equal(only!.weightDecay, 0.01);
  }));
});

describe('data order', () => {
  it('file order without shuffling; a seeded permutation per epoch otherwise', () => {
    assert.deepEqual(epochOrder(5, 0, 7, false), [0, 1, 2, 3, 4]);
    const a = epochOrder(20, 0, 7, true);
    assert.deepEqual(epochOrder(20, 0, 7, true), a, 'same seed and epoch, same order');
    assert.notDeepEqual(epochOrder(20, 1, 7, true), a, 'a new order each epoch');
    assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i));
  });

  it('micro-batches, accumulation windows and steps per epoch', () => {
    const b = microBatches([0, 1, 2, 3, 4, 5, 6], 3, false);
    assert.deepEqual(b, [[0, 1, 2], [3, 4, 5], [6]]);
    assert.deepEqual(microBatches([0, 1, 2, 3, 4, 5, 6], 3, true), [[0, 1, 2], [3, 4, 5]]);
    assert.deepEqual(accumulationWindows(b, 2), [[[0, 1, 2], [3, 4, 5]], [[6]]]);
    assert.equal(stepsPerEpoch(7, 3, 2, false), 2);
    assert.equal(stepsPerEpoch(7, 3, 2, true), 1);
    assert.equal(stepsPerEpoch(100, 8, 4, false), 4);
  });
});
