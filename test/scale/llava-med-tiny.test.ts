// The scale proof's code path (scripts/scale/llava-med-7b.ts) on a tiny configuration on the CPU:
// a LLaVA-Med-layout checkpoint in bf16 shards is made, each method trains here and in PyTorch
// (scripts/python/scale_reference.py), and the table has every field for both sides. The first
// step's loss (before any update) agrees within 1e-2 relative: the same checkpoint, the same
// batch, bf16 autocast with float32 masters on both sides. The MFU arithmetic is checked by hand.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { mfu, stepFlops } from '../../scripts/scale/flops.ts';
import { METHODS, runScale, type ScaleReport } from '../../scripts/scale/llava-med-7b.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medtune-scale-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('scale proof, tiny', () => {
  it('FLOPs per step: 4N per token through each part plus 2T for trained matrices', () => {
    const flops = stepFlops({
      vision: { matrix: 10, trainedMatrix: 0 }, projector: { matrix: 3, trainedMatrix: 3 }, language: { matrix: 100, trainedMatrix: 7 },
      batch: 2, seqLen: 8, imageTokens: 4, visionTokens: 5,
    });
    // 2 * (5 * 40 + 4 * (12 + 6) + 8 * (400 + 14)) = 2 * (200 + 72 + 3312)
    assert.equal(flops, 7168);
    assert.equal(mfu(989e12, 1), 1);
  });

  it('--tiny: a table with both sides for ln, attn, ffn and lora; first-step losses agree within 1e-2', async () => {
    const out = join(tmp, 'run');
    const report: ScaleReport = await runScale({ tiny: true, device: 'cpu', out, methods: [...METHODS], warmup: 1, steps: 1, budgetS: 0, python: true, checkpoint: null, batch: 2 });
    assert.ok(existsSync(join(out, 'scale.json')) && existsSync(join(out, 'scale.md')));
    assert.ok(report.checkpoint.shards > 1, 'the checkpoint is sharded');
    assert.ok(existsSync(join(report.checkpoint.dir, 'model.safetensors.index.json')));
    const index = JSON.parse(readFileSync(join(report.checkpoint.dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    assert.ok('model.mm_projector.0.weight' in index.weight_map && 'model.layers.0.self_attn.q_proj.weight' in index.weight_map, 'the original LLaVA-Med layout');
    assert.ok('model.vision_tower.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight' in index.weight_map);
    assert.deepEqual(report.rows.map((r) => r.method), [...METHODS]);
    for (const row of report.rows) {
      for (const [side, r] of [['medtune', row.medtune], ['PyTorch', row.pytorch]] as const) {
        assert.equal(r.error, null, `${row.method} ${side}: ${r.error}`);
        assert.ok(r.tokensPerS! > 0 && r.mfu! > 0 && r.loadS! > 0, `${row.method} ${side}: tokens/s, MFU, load time`);
        assert.equal(r.peakGiB, null, 'no CUDA allocator on the CPU');
      }
      assert.equal(row.medtune.trainable, row.pytorch.trainable, `${row.method}: the same trainable parameters`);
      assert.ok(row.flopsPerStep > 0 && row.speedup! > 0);
      assert.ok(row.firstLossRelDiff! < 1e-2, `${row.method}: first loss ${row.medtune.firstLoss} vs ${row.pytorch.firstLoss}`);
    }
    const md = readFileSync(join(out, 'scale.md'), 'utf8');
    assert.match(md, /\| method \| trainable \| medtune tok\/s \| PyTorch tok\/s \| ratio \|/);
    assert.equal(md.split('\n').filter((l) => /^\| (ln|attn|ffn|lora) \|/.test(l)).length, 4);
  });
});
