// The comparison's verdict and numbers from hand-made side results: differences, the tolerance,
// trainable-count mismatches, medians and ratios, and the markdown that shows them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildReport, defaultTolerance, relDiff, renderMarkdown } from '../../lib/compare/report.ts';
import type { SideResult } from '../../lib/compare/types.ts';

function side(losses: number[], o: { ms: number[]; count?: number; rss: number; tokens?: number }): SideResult {
  return {
    steps: losses.map((loss, i) => ({ loss, grad_norm: 1 + i, lr: 0.01, step_ms: o.ms[i]!, samples: 4, ...(o.tokens ? { tokens: o.tokens } : {}) })),
    trainable: { count: o.count ?? 100, total: 1000, tensors: 4 },
    memory: { peak_rss_bytes: o.rss, rss_before_training_bytes: null, cuda_peak_allocated_bytes: null },
    load_s: 1, device: 'cpu', threads: 2, versions: {},
  };
}

const run = { model: 'm', data: 'd', method: { method: 'ln' }, steps: 3, optimizer: 'adamw', lr: 0.01, schedule: 'linear', warmup: 0, max_grad_norm: 1, batch_size: 4, grad_accum: 1, seed: 42, dtype: 'fp32', device: 'cpu', examples: 12 };

describe('compare report', () => {
  it('relative differences against the larger magnitude; non-finite values never agree', () => {
    assert.equal(relDiff(2, 1.5), 0.25);
    assert.equal(relDiff(0, 0), 0);
    assert.equal(relDiff(Number.NaN, 1), Infinity);
    assert.equal(defaultTolerance('fp32'), 1e-4);
    assert.equal(defaultTolerance('bf16'), 2e-2);
  });

  it('agreeing runs: maxima, medians, throughput and ratios', () => {
    const m = side([2, 1.5, 1.25], { ms: [30, 10, 20], rss: 200 * 2 ** 20, tokens: 40 });
    const p = side([2, 1.50001, 1.25], { ms: [50, 40, 100], rss: 400 * 2 ** 20, tokens: 40 });
    const r = buildReport(m, p, { tolerance: 1e-4, run });
    assert.ok(r.ok);
    assert.deepEqual(r.failures, []);
    assert.ok(Math.abs(r.loss.max_abs_diff - 1e-5) < 1e-12);
    assert.ok(Math.abs(r.loss.max_rel_diff - 1e-5 / 1.50001) < 1e-12);
    assert.equal(r.loss.worst_step, 2);
    assert.equal(r.medtune.median_step_ms, 20);
    assert.equal(r.pytorch.median_step_ms, 50);
    assert.equal(r.medtune.samples_per_s, 200); // 4 samples / 20 ms
    assert.equal(r.medtune.tokens_per_s, 2000);
    assert.equal(r.ratios.median_step_time, 0.4);
    assert.equal(r.ratios.samples_per_s, 2.5);
    assert.equal(r.ratios.peak_rss, 0.5);
    assert.equal(r.ratios.cuda_peak_allocated, null);
    const md = renderMarkdown(r);
    assert.match(md, /\*\*Agree\*\*: max loss difference 1\.00e-5 absolute/);
    assert.match(md, /\| median step time \(ms\) \| 20\.00 \| 50\.00 \| 0\.40x \|/);
    assert.match(md, /\| peak RSS \(MiB\) \| 200\.0 \| 400\.0 \| 0\.50x \|/);
  });

  it('a loss beyond the tolerance, a count mismatch and a missing step are failures', () => {
    const m = side([2, 1.5, 1.25], { ms: [1, 1, 1], rss: 1 });
    const p = side([2, 1.6], { ms: [1, 1], count: 90, rss: 1 });
    const r = buildReport(m, p, { tolerance: 1e-4, run });
    assert.equal(r.ok, false);
    assert.equal(r.steps.length, 2);
    assert.deepEqual(r.failures, [
      'medtune ran 3 steps, PyTorch 2',
      `losses diverge: at step 2 medtune 1.5 vs PyTorch 1.6 (relative difference ${(0.1 / 1.6).toExponential(2)} > tolerance 0.0001)`,
      'trainable parameters differ: medtune 100, PyTorch 90',
    ]);
    assert.match(renderMarkdown(r), /\*\*DIVERGE\*\*/);
  });
});
