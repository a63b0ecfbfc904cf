// The order in which the trainer visits examples. Shuffled orders are a pure function of (seed,
// epoch): torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)), which a
// PyTorch script reproduces in one line and a resumed run recomputes without saved state.
// Without shuffling the order is the file's.
import { Generator, randperm } from '../torch/creation.ts';
import { tidy } from '../torch/scope.ts';

export function epochOrder(n: number, epoch: number, seed: number, shuffle: boolean): number[] {
  if (!shuffle) return Array.from({ length: n }, (_, i) => i);
  return tidy(() => randperm(n, { generator: new Generator(seed + epoch) }).toNumbers());
}

/** An epoch's micro-batches (lists of example indices) in visiting order. */
export function microBatches(order: readonly number[], batchSize: number, dropLast: boolean): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) {
    const b = order.slice(i, i + batchSize);
    if (b.length < batchSize && dropLast) break;
    out.push(b);
  }
  return out;
}

/**
 * Accumulation windows of an epoch: groups of `gradAccum` micro-batches, one optimizer step each.
 * The last window may be shorter (the HF Trainer also steps on an epoch's remainder).
 */
export function accumulationWindows(batches: readonly number[][], gradAccum: number): number[][][] {
  const out: number[][][] = [];
  for (let i = 0; i < batches.length; i += gradAccum) out.push(batches.slice(i, i + gradAccum));
  return out;
}

/** Optimizer steps in one epoch of `n` examples. */
export function stepsPerEpoch(n: number, batchSize: number, gradAccum: number, dropLast: boolean): number {
  const batches = dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
  return Math.ceil(batches / gradAccum);
}

/** An accumulation window: which micro-batches (example indices) one optimizer step takes. */
export interface WindowRef {
  epoch: number;
  /** Position of the window in its epoch. */
  index: number;
  batches: number[][];
}

/**
 * The trainer's windows in visiting order, from window `done` of `epoch` on, endlessly (the
 * caller stops after its step count). `medtune compare` exports the batches in this order.
 */
export function* trainingWindows(n: number, o: { batchSize: number; gradAccum: number; dropLast: boolean; shuffle: boolean; seed: number }, epoch = 0, done = 0): IterableIterator<WindowRef> {
  for (let e = epoch; ; e++) {
    const windows = accumulationWindows(microBatches(epochOrder(n, e, o.seed, o.shuffle), o.batchSize, o.dropLast), o.gradAccum);
    for (let i = e === epoch ? done : 0; i < windows.length; i++) yield { epoch: e, index: i, batches: windows[i]! };
  }
}
