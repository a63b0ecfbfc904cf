// Mixed precision against PyTorch's autocast training (scripts/python/amp_reference.py: the HF
// Trainer's bf16 / fp16 step written out, transformers 5 + peft 0.21, CPU): bf16 LN-tuning and LoRA
// of a tiny llava-hf LLaVA through the trainer with per-step losses within 1e-2 relative, trained
// tensors float32 masters and frozen weights bf16 on both sides; fp16 dynamic loss scaling on a
// tiny ViT whose data holds a NaN image: the same skipped steps, the same loss-scale sequence as
// torch.amp.GradScaler (growth every 2 good steps here, halving on the skip), the schedule held
// back on skipped steps as the Trainer does, and the same losses.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel } from '../../lib/models/index.ts';
import { applyMethod, type MethodSpec } from '../../lib/peft/index.ts';
import { resolveTrainConfig } from '../../lib/train/config.ts';
import { TensorFileDataset } from '../../lib/train/dataset.ts';
import { computeDType } from '../../lib/train/mixed-precision.ts';
import { silentProgress } from '../../lib/train/progress.ts';
import type { StepRecord } from '../../lib/train/step-log.ts';
import { train } from '../../lib/train/trainer.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture, runPythonJson } from '../helpers/python.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medtune-amp-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface RefStep { loss: number | string; grad_norm: number | string; lr: number; scale: number | null; skipped: boolean }
interface RefRun { steps: RefStep[]; trainable: number; dtypes: { trained: string[]; frozen: string[] } }

// MEDTUNE_TEST_DEVICE=cuda runs both sides on the GPU (scripts/gpu/check.sh); the default is the CPU.
const DEVICE = (process.env['MEDTUNE_TEST_DEVICE'] ?? 'cpu') as 'cpu' | 'cuda';

const num = (x: number | string): number => (typeof x === 'number' ? x : Number(x.replace('inf', 'Infinity')));

let llava: string;
let vit: string;
let ref: RefRun[];
const STEPS = 5;
const SCALER = { initScale: 2 ** 16, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2 };
const FP16_STEPS = 8;

const llavaCases: { name: string; spec: (dir: string) => MethodSpec; job: (dir: string) => Record<string, unknown> }[] = [
  { name: 'ln', spec: () => ({ method: 'ln' }), job: () => ({ method: 'ln' }) },
  {
    name: 'lora', spec: (dir) => ({ method: 'lora', lora: { initAdapter: join(dir, 'llava_lora') } }),
    job: (dir) => ({ method: 'lora', adapter: join(dir, 'llava_lora') }),
  },
];

before(() => {
  llava = cachedFixture('peft-llava', 'make_peft_llava_fixtures.py', [], { dependsOn: ['peft_reference.py', 'timm_vit_reference.py'] });
  vit = cachedFixture('vit-nih', 'make_vit_nih_fixture.py');
  const jobs = [
    ...llavaCases.map((c) => ({
      model: join(llava, 'llava'), data: join(llava, 'llava_batch.safetensors'), dtype: 'bf16', steps: STEPS, lr: 1e-3, batchSize: 2,
      schedule: 'linear', warmup: 1, maxGradNorm: 1.0, device: DEVICE, ...c.job(llava),
    })),
    // nan.safetensors: example 9 is NaN, so with batch 4 in file order step 3 (and step 9) sees it.
    {
      model: join(vit, 'model'), data: join(vit, 'nan.safetensors'), dtype: 'fp16', steps: FP16_STEPS, lr: 1e-3, batchSize: 4,
      schedule: 'linear', warmup: 2, maxGradNorm: 1.0, method: 'ln', extra: 'classifier', scaler: SCALER, device: DEVICE,
    },
  ];
  const file = join(tmp, 'jobs.json');
  writeFileSync(file, JSON.stringify(jobs));
  ref = runPythonJson<RefRun[]>('amp_reference.py', [file, ...(DEVICE === 'cuda' ? ['--cuda'] : [])]);
});

async function trainHere(modelDir: string, data: string, dtype: 'bf16' | 'fp16', spec: MethodSpec, config: Record<string, unknown>) {
  const model = await loadModel(modelDir, { dtype, device: DEVICE });
  const dataset = await TensorFileDataset.open(data);
  const records: StepRecord[] = [];
  try {
    await applyMethod(model, spec);
    const result = await train({
      model, train: dataset, progress: silentProgress, print: () => {}, onStep: (r) => records.push(r),
      config: resolveTrainConfig({ out: join(tmp, `${dtype}-${spec.method}-${records.length}-${Math.random().toString(36).slice(2)}`), shuffle: false, weightDecay: 0, ...config }),
    });
    const params = model.parameters();
    return {
      result, records, computeDType: computeDType(model),
      trained: [...new Set(params.filter((p) => p.requiresGrad).map((p) => p.dtype))],
      frozen: [...new Set(params.filter((p) => !p.requiresGrad).map((p) => p.dtype))],
    };
  } finally {
    dataset.dispose();
    model.dispose();
  }
}

describe('mixed precision (bf16 / fp16) against PyTorch autocast', () => {
  for (const [i, c] of llavaCases.entries()) {
    it(`bf16 ${c.name} on a tiny LLaVA: float32 masters, bf16 frozen weights, PyTorch's losses within 1e-2`, async () => {
      const here = await trainHere(join(llava, 'llava'), join(llava, 'llava_batch.safetensors'), 'bf16', c.spec(llava), {
        steps: STEPS, lr: 1e-3, batchSize: 2, schedule: 'linear', warmup: 1, maxGradNorm: 1.0,
      });
      const theirs = ref[i]!;
      assert.equal(here.computeDType, 'bfloat16');
      assert.deepEqual(here.trained, ['float32'], 'trained tensors are float32 masters');
      assert.deepEqual(here.frozen, ['bfloat16'], 'frozen weights stay bf16');
      assert.deepEqual(theirs.dtypes, { trained: ['torch.float32'], frozen: ['torch.bfloat16'] }, 'the reference holds the same dtypes');
      assert.equal(here.result.trainable.count, theirs.trainable);
      assert.ok(here.result.mixedPrecision.promoted.length > 0 || c.name === 'lora', 'ln: the norms were promoted');
      assertClose(here.result.losses, theirs.steps.map((s) => num(s.loss)), { atol: 0, rtol: 1e-2, message: `${c.name}: per-step losses` });
      assertClose(here.records.map((r) => r.lr), theirs.steps.map((s) => s.lr), { atol: 0, rtol: 1e-12, message: 'learning rates' });
      // The optimizer really moved the float32 masters: a bf16 update this small would round away.
      assert.notEqual(here.result.losses[0], here.result.losses[STEPS - 1]);
    });
  }

  it("fp16: GradScaler's scale sequence, skipped steps and held-back schedule; the NaN batch does not stop the run", async () => {
    const here = await trainHere(join(vit, 'model'), join(vit, 'nan.safetensors'), 'fp16', { method: 'ln', trainExtra: 'classifier' }, {
      steps: FP16_STEPS, lr: 1e-3, batchSize: 4, schedule: 'linear', warmup: 2, maxGradNorm: 1.0, gradScaler: SCALER,
    });
    const theirs = ref[2]!;
    assert.equal(here.computeDType, 'float16');
    assert.deepEqual(here.trained, ['float32']);
    assert.deepEqual(here.frozen, ['float16']);
    const skipped = here.records.map((r) => r.skipped === true);
    assert.deepEqual(skipped, theirs.steps.map((s) => s.skipped), 'the same steps are skipped');
    assert.deepEqual(skipped, [false, false, true, false, false, false, false, false], 'the NaN batch (step 3) is skipped');
    assert.deepEqual(here.records.map((r) => r.loss_scale), theirs.steps.map((s) => s.scale), "GradScaler's scale before each step");
    assert.deepEqual(here.records.map((r) => r.loss_scale), [65536, 65536, 131072, 65536, 65536, 131072, 131072, 262144]);
    assert.equal(here.result.skippedSteps, 1);
    // The skipped step did not advance the schedule: step 4 runs with step 3's lr.
    assertClose(here.records.map((r) => r.lr), theirs.steps.map((s) => s.lr), { atol: 0, rtol: 1e-12, message: 'learning rates' });
    assert.equal(here.records[3]!.lr, here.records[2]!.lr);
    const losses = here.result.losses;
    assert.ok(Number.isNaN(losses[2]!) && Number.isNaN(num(theirs.steps[2]!.loss)), 'step 3 has the NaN loss on both sides');
    assertClose(losses.filter((_, k) => k !== 2), theirs.steps.filter((_, k) => k !== 2).map((s) => num(s.loss)), { atol: 0, rtol: 1e-2, message: 'fp16 losses' });
    const log = readFileSync(join(here.result.out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as StepRecord);
    assert.equal(log.filter((r) => r.skipped).length, 1, 'the skip is in the step log');
  });
});
