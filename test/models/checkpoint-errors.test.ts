// Model directories that cannot be loaded: each a clear Error naming the file and the tensor or
// field, never a crash. (Corrupt safetensors bytes are in safetensors.test.ts.)
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { createModel, loadModel, loadSafetensors, ModelConfigError, saveSafetensors } from '../../lib/models/index.ts';
import { tidy } from '../../lib/torch/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medtune-ckpt-'));
const config = {
  model_type: 'vit', architectures: ['ViTForImageClassification'], hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2,
  intermediate_size: 32, image_size: 8, patch_size: 4, num_labels: 3,
};
let single: string;
let sharded: string;

function copy(from: string, name: string): string {
  const dir = join(tmp, name);
  cpSync(from, dir, { recursive: true });
  return dir;
}

function editJson(path: string, edit: (v: Record<string, unknown>) => void): void {
  const value = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  edit(value);
  writeFileSync(path, JSON.stringify(value));
}

describe('checkpoint errors', () => {
  before(async () => {
    const model = await createModel(config, { seed: 1 });
    single = join(tmp, 'single');
    sharded = join(tmp, 'sharded');
    await model.save(single);
    await model.save(sharded, { maxShardSize: '4KB' });
    model.dispose();
  });

  it('a missing shard names the index, the shard and a tensor in it', async () => {
    const dir = copy(sharded, 'missing-shard');
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    const shard = index.weight_map['classifier.weight']!;
    rmSync(join(dir, shard));
    await assert.rejects(loadModel(dir), (err: Error) => {
      assert.ok(err instanceof ModelConfigError);
      assert.match(err.message, new RegExp(`model.safetensors.index.json: shard ${shard} \\(holding '[^']+'( and \\d+ other tensor\\(s\\))?\\) is missing`));
      return true;
    });
  });

  it('an index that assigns a tensor to the wrong shard', async () => {
    const dir = copy(sharded, 'lying-index');
    const indexPath = join(dir, 'model.safetensors.index.json');
    let target = '';
    editJson(indexPath, (v) => {
      const map = v['weight_map'] as Record<string, string>;
      const other = Object.values(map).find((f) => f !== map['classifier.weight'])!;
      map['classifier.weight'] = other;
      target = other;
    });
    await assert.rejects(loadModel(dir), new RegExp(`${target}: the index assigns tensor 'classifier.weight' to this shard but it is not in the file`));
  });

  it('a tensor whose shape does not fit config.json names the file, the tensor and both shapes', async () => {
    const dir = copy(single, 'wrong-shape');
    editJson(join(dir, 'config.json'), (v) => { v['intermediate_size'] = 24; });
    await assert.rejects(loadModel(dir), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'MEDTUNE_BAD_CHECKPOINT');
      assert.match(err.message, /model\.safetensors: tensor 'vit\.encoder\.layer\.0\.intermediate\.dense\.(weight|bias)' has shape \[32(, 16)?\] but the model built from config\.json expects \[24(, 16)?\]/);
      return true;
    });
  });

  it('a tensor missing from the checkpoint is named', async () => {
    const dir = copy(single, 'missing-tensor');
    await tidy(async () => {
      const { tensors, metadata } = await loadSafetensors(join(dir, 'model.safetensors'));
      delete tensors['vit.encoder.layer.1.layernorm_after.bias'];
      await saveSafetensors(join(dir, 'model.safetensors'), tensors, metadata);
    });
    await assert.rejects(loadModel(dir), /lacks 1 tensor\(s\) the model built from config\.json needs: 'vit\.encoder\.layer\.1\.layernorm_after\.bias'/);
  });

  it('an unexpected tensor is reported, not fatal', async () => {
    const dir = copy(single, 'extra-tensor');
    await tidy(async () => {
      const { tensors } = await loadSafetensors(join(dir, 'model.safetensors'));
      tensors['vit.encoder.layer.0.extra'] = tensors['classifier.bias']!;
      await saveSafetensors(join(dir, 'model.safetensors'), tensors);
    });
    const model = await loadModel(dir);
    assert.deepEqual(model.loadReport.unexpected, ['vit.encoder.layer.0.extra']);
    model.dispose();
  });

  it('config.json missing, malformed, or naming an unsupported model', async () => {
    const dir = copy(single, 'configs');
    rmSync(join(dir, 'config.json'));
    await assert.rejects(loadModel(dir), /config\.json: no such file/);
    writeFileSync(join(dir, 'config.json'), '{"model_type": "vit",');
    await assert.rejects(loadModel(dir), /config\.json: not valid JSON/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'bert' }));
    await assert.rejects(loadModel(dir), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'MEDTUNE_UNSUPPORTED_MODEL');
      assert.match(err.message, /model_type 'bert' is not supported; supported: vit, .*timm 'vit_\*' architectures/);
      return true;
    });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, hidden_size: 'big' }));
    await assert.rejects(loadModel(dir), /config\.json: "hidden_size" must be an integer, got "big"/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ architecture: 'vit_enormous_patch16_224' }));
    await assert.rejects(loadModel(dir), /timm architecture 'vit_enormous_patch16_224' is not supported/);
    await assert.rejects(createModel({ model_type: 'vit', architectures: ['ViTForMaskedImageModeling'] }), /architecture ViTForMaskedImageModeling is not supported for model_type 'vit'/);
  });

  it('a directory without safetensors weights says what it found', async () => {
    const dir = join(tmp, 'pickles');
    cpSync(join(single, 'config.json'), join(dir, 'config.json'));
    writeFileSync(join(dir, 'pytorch_model.bin'), 'not really');
    await assert.rejects(loadModel(dir), /no model\.safetensors or model\.safetensors\.index\.json\. It has PyTorch pickle weights \(pytorch_model\.bin\)/);
    await assert.rejects(loadModel(join(tmp, 'nowhere')), /nowhere: no such model directory/);
  });
});
