// `medtune train` with the PEFT flags: LoRA with an extra-trained head prints peft's count line,
// writes a PEFT adapter directory (that loadAdapter reads back to the trained model), and resumes
// from a checkpoint with the same losses (adapter weights restored into the attached adapters);
// LN-tuning with a scope; bad method flags are one clear line and exit code 2.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { createModel, loadModel, readSafetensorsHeader, saveSafetensors } from '../../lib/models/index.ts';
import { loadAdapter } from '../../lib/peft/index.ts';
import { randn, tensor } from '../../lib/torch/index.ts';
import { REPO_ROOT } from '../helpers/fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medtune-peft-cli-'));
const cli = join(REPO_ROOT, 'bin', 'medtune.js');
const modelDir = join(tmp, 'vit');
const dataFile = join(tmp, 'data.safetensors');

before(async () => {
  const model = await createModel({
    model_type: 'vit', architectures: ['ViTForImageClassification'], hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2,
    intermediate_size: 32, image_size: 8, patch_size: 4, num_labels: 3, problem_type: 'multi_label_classification',
  }, { seed: 5 });
  await model.save(modelDir);
  model.dispose();
  const labels = tensor(Array.from({ length: 10 }, (_, i) => [i % 2, (i >> 1) % 2, i % 3 === 0 ? 1 : 0]), { dtype: 'float32' });
  await saveSafetensors(dataFile, { pixel_values: randn([10, 3, 8, 8]), labels });
});

const losses = (out: string) => readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);

describe('medtune train with PEFT methods', () => {
  it('--method lora --train-extra classifier: the report, a PEFT adapter directory, and an exact resume', async () => {
    const out = join(tmp, 'lora');
    const args = [cli, 'train', '--model', modelDir, '--data', dataFile, '--steps', '4', '--batch-size', '5', '--lr', '1e-2', '--seed', '3',
      '--method', 'lora', '--lora-r', '2', '--lora-alpha', '4', '--lora-targets', 'query,value', '--train-extra', 'classifier', '--save-every', '2', '--out', out];
    const stdout = execFileSync(process.execPath, args, { encoding: 'utf8' });
    // LoRA: 2 layers x 2 projections x (2 x 16 + 16 x 2) = 256, classifier 51; peft counts the
    // classifier twice in "all params" (the frozen original and the trained copy)
    assert.match(stdout, /trainable params: 307 \|\| all params: 5,718 \|\| trainable%: 5\.3690/);
    assert.match(stdout, /vision \(adapters\)\s+256\s+256/);
    assert.match(stdout, new RegExp(`saved adapter_config\\.json, adapter_model\\.safetensors in ${out}`));
    assert.ok(existsSync(join(out, 'medtune_method.json')));
    const keys = readSafetensorsHeader(join(out, 'adapter_model.safetensors')).tensors.map((t) => t.name);
    assert.equal(keys.length, 4 * 2 + 2);
    const config = JSON.parse(readFileSync(join(out, 'training_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal((config['method_plan'] as { lora: { r: number } }).lora.r, 2);

    const model = await loadModel(modelDir);
    const applied = await loadAdapter(model, out);
    assert.deepEqual(applied.modulesToSave, ['classifier']);
    model.dispose();

    const first = losses(out);
    const resumed = execFileSync(process.execPath, [...args, '--resume', 'latest'], { encoding: 'utf8' });
    assert.match(resumed, /resuming from .*checkpoint-2 after step 2/);
    assert.deepEqual(losses(out).slice(4), first.slice(2), 'steps 3-4 after resuming from checkpoint-2 equal the uninterrupted run');
  });

  it('--method ln --scope vision, and bad method flags as one line', () => {
    const out = join(tmp, 'ln');
    const stdout = execFileSync(process.execPath, [cli, 'train', '--model', modelDir, '--data', dataFile, '--steps', '1', '--batch-size', '5',
      '--method', 'ln', '--scope', 'vision', '--out', out], { encoding: 'utf8' });
    assert.match(stdout, /trainable params: 160 \|\| all params: 5,411/);
    assert.deepEqual(readSafetensorsHeader(join(out, 'trainable.safetensors')).tensors.length, 10);
    const run = (...extra: string[]) => spawnSync(process.execPath, [cli, 'train', '--model', modelDir, '--data', dataFile, '--steps', '1', '--out', join(tmp, 'bad'), ...extra], { encoding: 'utf8' });
    const r1 = run('--method', 'prefix');
    assert.equal(r1.status, 2, 'a bad method flag is a usage error');
    assert.match(r1.stderr, /^medtune train: unknown method 'prefix' \(known: ln, ffn, attn, bitfit, full, lora/);
    assert.equal(run('--method', 'lora', '--lora-targets', 'wq').status, 2);
    assert.match(run('--method', 'lora', '--lora-r', 'x').stderr, /^medtune train: --lora-r must be an integer, got 'x'/);
    assert.match(run('--method', 'ln', '--lora-r', '4').stderr, /LoRA settings \(r\) apply to adapter methods \(lora\), not to --method ln/);
    assert.match(run('--method', 'ln', '--scope', 'language').stderr, /scope 'language' selects no parameter of this ViTForImageClassification model/);
    assert.match(run('--method', 'lora', '--adapter-names', 'hub').stderr, /--adapter-names must be transformers5 or checkpoint, got 'hub'/);
    assert.ok(!existsSync(join(tmp, 'bad', 'trainable.safetensors')));
    const v4 = join(tmp, 'lora-v4');
    execFileSync(process.execPath, [cli, 'train', '--model', modelDir, '--data', dataFile, '--steps', '1', '--batch-size', '5', '--method', 'lora',
      '--adapter-names', 'checkpoint', '--out', v4], { encoding: 'utf8' });
    const names = readSafetensorsHeader(join(v4, 'adapter_model.safetensors')).tensors.map((t) => t.name);
    assert.ok(names.includes('base_model.model.vit.encoder.layer.0.attention.attention.query.lora_A.weight'), 'transformers 4.x names');
    assert.deepEqual(JSON.parse(readFileSync(join(v4, 'adapter_config.json'), 'utf8')).target_modules, ['query', 'value']);
  });
});
