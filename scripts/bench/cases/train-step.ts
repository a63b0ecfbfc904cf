// Train-step case: time per optimizer step of one tuning method (ln, ffn, attn, lora, full) as
// `medtune train --method M` runs it (applyTuningMethod + the library trainer), against the same
// loop in PyTorch (transformers + peft, scripts/python/bench_worker.py 'train'), on the same
// model directory and tensor file, batch and thread count. The sides alternate rounds so that a
// change in machine load hits both. A step's time is the interval between the ends of
// consecutive steps on each side (everything the loop does per step, logging included).
//
// Dispatch overhead: the trainer logs native_ms, the time inside the native step (forward,
// backward, clipping, update, measured with steady_clock in csrc/train/train_step.cpp); the
// per-step interval minus native_ms is what a step costs outside libtorch's work: the N-API call,
// the compute-queue hand-off, the result object and the TypeScript loop.
import { join } from 'node:path';
import { loadModel } from '../../../lib/models/index.ts';
import { applyTuningMethod } from '../../../lib/train/method.ts';
import { resolveTrainConfig } from '../../../lib/train/config.ts';
import { TensorFileDataset } from '../../../lib/train/dataset.ts';
import { silentProgress } from '../../../lib/train/progress.ts';
import { train } from '../../../lib/train/trainer.ts';
import { BENCH_CACHE, median, round3, row, type CaseResult, type PythonWorker } from './common.ts';

export interface TrainStepCase {
  /** Table group and name ("train ViT-tiny", "lora"). */
  group: string;
  modelDir: string;
  dataFile: string;
  method: string;
  batch: number;
  steps: number;
  warmup: number;
  rounds: number;
}

interface MedtuneRound {
  intervals: number[]; stepMs: number[]; nativeMs: number[]; fbMs: number[]; optMs: number[]; losses: number[]; trainable: number;
  /** Outside the native step, split: call -> native start, native end -> loop resumes, the rest of the loop iteration. */
  beforeMs: number[]; afterMs: number[]; loopMs: number[];
}

export async function medtuneTrainRound(c: TrainStepCase): Promise<MedtuneRound> {
  const model = await loadModel(c.modelDir);
  const data = await TensorFileDataset.open(c.dataFile);
  const r: MedtuneRound = { intervals: [], stepMs: [], nativeMs: [], fbMs: [], optMs: [], losses: [], trainable: 0, beforeMs: [], afterMs: [], loopMs: [] };
  try {
    const setup = await applyTuningMethod(model, { method: c.method, seed: 0 });
    r.trainable = model.parameterCount().trainable;
    let last = performance.now();
    await train({
      model, train: data, progress: silentProgress, print: () => {}, weights: setup.weights,
      config: resolveTrainConfig({
        steps: c.warmup + c.steps, batchSize: c.batch, lr: 1e-4, weightDecay: 0.01, noDecay: 'none', schedule: 'constant', maxGradNorm: 1,
        shuffle: false,
        // MEDTUNE_BENCH_LOSS_CHUNK=0 measures the whole-logits loss instead of the chunked default
        // (the chunked loss recomputes the LM head in backward: memory traded for compute).
        ...(process.env['MEDTUNE_BENCH_LOSS_CHUNK'] !== undefined ? { lossChunkTokens: Number(process.env['MEDTUNE_BENCH_LOSS_CHUNK']) } : {}),
        out: join(BENCH_CACHE, 'runs', `${c.group}-${c.method}`.replace(/[^\w.-]+/g, '_')),
      }),
      onStep: (s, split) => {
        const now = performance.now();
        if (s.step > c.warmup) {
          r.intervals.push(now - last);
          r.stepMs.push(s.step_ms);
          r.nativeMs.push(s.native_ms);
          r.fbMs.push(split.forwardBackwardMs);
          r.optMs.push(split.optimizerMs);
          r.beforeMs.push(split.startedAtMs - split.calledAtMs);
          r.afterMs.push(split.resumedAtMs - split.endedAtMs);
          r.loopMs.push(now - last - (split.resumedAtMs - split.calledAtMs));
          r.losses.push(s.loss);
        }
        last = now;
      },
    });
  } finally {
    data.dispose();
    model.dispose();
  }
  return r;
}

export async function trainStepCase(c: TrainStepCase, worker: PythonWorker): Promise<CaseResult> {
  const mine: MedtuneRound[] = [];
  const theirs: { step_ms: number[]; loss: number[]; trainable: number; forward_backward_ms: number[]; optimizer_ms: number[] }[] = [];
  for (let i = 0; i < c.rounds; i++) {
    mine.push(await medtuneTrainRound(c));
    theirs.push(await worker.call({ cmd: 'train', model: c.modelDir, data: c.dataFile, method: c.method, batch: c.batch, steps: c.steps, warmup: c.warmup }));
  }
  const intervals = mine.flatMap((m) => m.intervals);
  const native = mine.flatMap((m) => m.nativeMs);
  const outside = mine.flatMap((m) => m.intervals.map((x, k) => x - m.nativeMs[k]!));
  const step = median(intervals);
  const overheadMs = median(outside);
  const trainable = { medtune: mine[0]!.trainable, pytorch: theirs[0]!.trainable };
  // Same seeds, files and batches: the first losses should agree (they are the parity tests'
  // business; here they show that both sides ran the same computation).
  const firstLoss = { medtune: mine[0]!.losses[0] ?? NaN, pytorch: theirs[0]!.loss[0] ?? NaN };
  return row(c.group, c.method, `step of batch ${c.batch}`, intervals, theirs.flatMap((t) => t.step_ms), {
    trainable,
    first_timed_loss: firstLoss,
    native_ms: round3(median(native)),
    dispatch_overhead_us: Math.round(overheadMs * 1000),
    dispatch_overhead_share: round3(overheadMs / step),
    // The least of it over all steps: what the hand-off costs when the scheduler does not intervene.
    dispatch_overhead_min_us: Math.round(Math.min(...outside) * 1000),
    // Medians of its parts: the call until the native step starts (reading the arguments, waking
    // the compute thread), the native step's end until the loop resumes (hand-off back, result
    // object), and the rest of the loop iteration (next batch, log line, schedule).
    dispatch_split_us: {
      call_to_native_start: Math.round(median(mine.flatMap((m) => m.beforeMs)) * 1000),
      native_end_to_resume: Math.round(median(mine.flatMap((m) => m.afterMs)) * 1000),
      rest_of_loop: Math.round(median(mine.flatMap((m) => m.loopMs)) * 1000),
    },
    trainer_step_ms: round3(median(mine.flatMap((m) => m.stepMs))),
    // Where the step's time goes on each side: batch + forward + backward | clip + update + zero_grad + read-back.
    forward_backward_ms: { medtune: round3(median(mine.flatMap((m) => m.fbMs))), pytorch: round3(median(theirs.flatMap((t) => t.forward_backward_ms))) },
    optimizer_ms: { medtune: round3(median(mine.flatMap((m) => m.optMs))), pytorch: round3(median(theirs.flatMap((t) => t.optimizer_ms))) },
  }, trainable.medtune !== trainable.pytorch ? `trainable parameters differ: medtune ${trainable.medtune}, PyTorch ${trainable.pytorch}` : undefined);
}
