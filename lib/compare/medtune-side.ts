// medtune's side of a comparison: the trainer's own loop (train()) on the exported batches,
// starting from the initial weights written before step 1, measured in this process.
import { loadModel } from '../models/load.ts';
import { memoryStats, resetPeakMemoryStats } from '../torch/cuda-memory.ts';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../torch/native.ts';
import { buildInfo, getNumThreads } from '../torch/runtime.ts';
import { applyTuningMethod } from '../train/method.ts';
import { LineProgress, type ProgressSink } from '../train/progress.ts';
import { train } from '../train/trainer.ts';
import { ReplayDataset } from './batches.ts';
import type { MedtuneJob, SideResult, SideStep } from './types.ts';

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

function cudaIndex(device: string): number | null {
  if (!device.startsWith('cuda')) return null;
  return device.includes(':') ? Number(device.split(':')[1]) : 0;
}

/** `progress`: per-step lines (default none). */
export async function runMedtuneSide(job: MedtuneJob, progress: ProgressSink = new LineProgress(() => {})): Promise<SideResult> {
  const t0 = performance.now();
  const model = await loadModel(job.model, {
    dtype: job.dtype, device: job.device, seed: job.config.seed,
    ...(job.arch ? { config: job.arch } : {}), ...(job.numLabels ? { numLabels: job.numLabels } : {}),
  });
  try {
    const tuning = await applyTuningMethod(model, { ...job.method, seed: job.config.seed, baseModel: job.baseModel });
    // The very weights the PyTorch side starts from (for LoRA, the same draws anyway: same seed).
    await tuning.weights.load(model, job.init);
    const data = ReplayDataset.open(job.batches);
    const loadS = (performance.now() - t0) / 1000;
    const cuda = cudaIndex(job.device);
    if (cuda !== null) resetPeakMemoryStats(cuda);
    const rssBefore = process.memoryUsage().rss;
    const steps: SideStep[] = [];
    const result = await train({
      model, train: data, config: job.config, weights: tuning.weights, parameterReport: tuning.report,
      progress, print: () => {},
      onStep: (r) => steps.push({
        loss: r.loss, grad_norm: r.grad_norm, lr: r.lr, step_ms: r.step_ms, samples: r.samples, ...(r.tokens !== undefined ? { tokens: r.tokens } : {}),
      }),
    });
    const stats = cuda !== null ? memoryStats(cuda) : null;
    return {
      steps,
      trainable: { count: result.trainable.count, total: result.trainable.total, tensors: model.parameters().filter((p) => p.requiresGrad).length },
      memory: {
        peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
        rss_before_training_bytes: rssBefore,
        cuda_peak_allocated_bytes: stats && stats.available ? stats.peakAllocated : null,
      },
      load_s: loadS,
      device: job.device,
      threads: getNumThreads(),
      versions: { medtune: packageVersion(), libtorch: `${buildInfo().torchVersion} (${buildInfo().variant})`, node: process.versions.node },
    };
  } finally {
    model.dispose();
  }
}

/** Runs a job and writes its result as JSON (the worker process's whole work). */
export async function runMedtuneJob(job: MedtuneJob): Promise<void> {
  const every = Math.max(1, Math.ceil((job.config.steps ?? 1) / 20));
  const result = await runMedtuneSide(job, new LineProgress((line) => process.stdout.write(`${line}\n`), every));
  writeFileSync(job.result, `${JSON.stringify(result, null, 1)}\n`);
}
