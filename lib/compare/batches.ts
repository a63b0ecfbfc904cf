// The batches of a compared run, materialised: every micro-batch medtune's trainer takes, in its
// order, in one safetensors file that both sides train from. The PyTorch side reads tensors, not
// datasets, so data loading (images, tokenization, collation) is medtune's alone and cannot make
// the two sides differ.
//
//   step{S}/micro{M}/{key}   tensor `key` (input_ids, pixel_values ...) of micro-batch M of step S
//   metadata: format, steps, loss_scaling, examples, windows (JSON: the example indices per step)
import type { Batch } from '../models/model.ts';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from '../io/safetensors.ts';
import { keep } from '../torch/scope.ts';
import type { Tensor } from '../torch/tensor.ts';
import type { TrainConfig } from '../train/config.ts';
import { trainingWindows } from '../train/data-order.ts';
import type { LossScaling, TrainDataset } from '../train/dataset.ts';

export const BATCHES_FORMAT = 'medtune.compare_batches/1';

export class BatchReplayError extends Error {
  override name = 'BatchReplayError';
}

export interface ExportedBatches {
  file: string;
  steps: number;
  lossScaling: LossScaling;
  examples: number;
  /** Example indices of each micro-batch of each step. */
  windows: number[][][];
}

function key(step: number, micro: number, name: string): string {
  return `step${step}/micro${micro}/${name}`;
}

/**
 * Writes the batches of the first `steps` optimizer steps of a run with this data and config, as
 * the trainer visits them (trainingWindows: the same seeded order, batch size, accumulation,
 * drop-last). The tensors are held until the file is written: compare is meant for short runs.
 */
export async function exportBatches(data: TrainDataset, config: Pick<TrainConfig, 'batchSize' | 'gradAccum' | 'dropLast' | 'shuffle' | 'seed'>, steps: number, file: string): Promise<ExportedBatches> {
  const tensors = new Map<string, Tensor>();
  const windows: number[][][] = [];
  try {
    const order = trainingWindows(data.size, config);
    for (let s = 1; s <= steps; s++) {
      const w = order.next().value as { batches: number[][] };
      windows.push(w.batches);
      for (let m = 0; m < w.batches.length; m++) {
        const batch: Batch = await data.batch(w.batches[m]!);
        for (const [name, t] of Object.entries(batch)) if (t) tensors.set(key(s, m, name), t);
      }
    }
    await saveSafetensors(file, tensors, {
      format: BATCHES_FORMAT, steps: String(steps), loss_scaling: data.lossScaling, examples: String(data.size), windows: JSON.stringify(windows),
    });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return { file, steps, lossScaling: data.lossScaling, examples: data.size, windows };
}

/**
 * A TrainDataset that hands the trainer the exported batches. The trainer still chooses which
 * examples it wants (its own order); each request must be the next exported micro-batch, so a
 * run whose order differs from the file's stops with an error instead of training on other data.
 * Tensors are read from the file one micro-batch at a time.
 */
export class ReplayDataset implements TrainDataset {
  readonly size: number;
  readonly lossScaling: LossScaling;
  readonly windows: number[][][];
  readonly steps: number;
  #next = 0;
  readonly #flat: { step: number; micro: number; indices: number[] }[];

  private constructor(readonly file: string, metadata: Record<string, string>, readonly names: string[]) {
    if (metadata['format'] !== BATCHES_FORMAT) throw new BatchReplayError(`${file}: not a compare batches file (format '${metadata['format'] ?? 'none'}')`);
    this.size = Number(metadata['examples']);
    this.steps = Number(metadata['steps']);
    const scaling = metadata['loss_scaling'];
    if (scaling !== 'tokens' && scaling !== 'batches') throw new BatchReplayError(`${file}: metadata loss_scaling must be 'tokens' or 'batches', got '${scaling}'`);
    this.lossScaling = scaling;
    this.windows = JSON.parse(metadata['windows'] ?? '[]') as number[][][];
    this.#flat = this.windows.flatMap((w, s) => w.map((indices, micro) => ({ step: s + 1, micro, indices })));
  }

  /** Reads only the header: no tensor is read until a batch is asked for. */
  static open(file: string): ReplayDataset {
    const header = readSafetensorsHeader(file);
    return new ReplayDataset(file, header.metadata, header.tensors.map((t) => t.name));
  }

  async batch(indices: readonly number[]): Promise<Batch> {
    const want = this.#flat[this.#next];
    if (!want) throw new BatchReplayError(`${this.file}: the trainer asked for more micro-batches than the ${this.#flat.length} exported`);
    if (want.indices.length !== indices.length || want.indices.some((v, i) => v !== indices[i])) {
      throw new BatchReplayError(`${this.file}: the trainer asked for examples [${indices.join(', ')}] where step ${want.step} micro-batch ${want.micro} holds [${want.indices.join(', ')}]`);
    }
    this.#next++;
    const prefix = `step${want.step}/micro${want.micro}/`;
    const names = this.names.filter((n) => n.startsWith(prefix));
    const { tensors } = await loadSafetensors(this.file, { names });
    const out: Batch = {};
    for (const [name, t] of Object.entries(tensors)) out[name.slice(prefix.length)] = t;
    keep(Object.values(tensors)); // the trainer disposes them after the step
    return out;
  }

  describe(): string {
    return `${this.#flat.length} exported micro-batches of ${this.size} examples (${this.steps} steps) from ${this.file}`;
  }
}
