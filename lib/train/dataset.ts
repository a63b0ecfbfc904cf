// What the trainer needs from data: a number of examples and, for a list of example indices, a
// collated batch of HF-named tensors. The data layer (lib/data: formats, images, tokenization,
// collation) implements this; the trainer knows nothing about files or formats.
import type { Batch } from '../models/model.ts';
import { loadSafetensors } from '../io/safetensors.ts';
import { tensor } from '../torch/creation.ts';
import { keep } from '../torch/scope.ts';
import type { Tensor } from '../torch/tensor.ts';

/**
 * How a micro-batch's loss is scaled under gradient accumulation (see csrc/train/train_step.cpp):
 * 'tokens' for language-model losses (by the window's supervised-token count, as the HF Trainer's
 * num_items_in_batch), 'batches' for losses that are a mean over the micro-batch (classifiers).
 */
export type LossScaling = 'tokens' | 'batches';

export interface TrainDataset {
  /** Number of examples. */
  readonly size: number;
  readonly lossScaling: LossScaling;
  /**
   * The collated batch of these examples, in this order. The trainer owns (and disposes) the
   * returned tensors once the step that used them is done.
   */
  batch(indices: readonly number[]): Batch | Promise<Batch>;
  /** A short description for logs and the resolved config ("nih: 112 examples from ..."). */
  describe(): string;
  /** Releases what the dataset holds (cached tensors, open files). */
  dispose?(): void;
}

/**
 * A dataset of pre-processed tensors: one safetensors file whose tensors all share their first
 * dimension (the examples), e.g. `pixel_values` [N, C, H, W] and `labels` [N, L], or padded
 * `input_ids` / `attention_mask` / `labels` [N, T]. Batches are rows of every tensor.
 * The file's metadata may say `loss_scaling` ('tokens' | 'batches'; default: 'tokens' when it
 * holds input_ids, else 'batches') and `label_names` (JSON array).
 */
export class TensorFileDataset implements TrainDataset {
  readonly size: number;
  readonly lossScaling: LossScaling;
  readonly labelNames: string[] | null;

  private constructor(readonly path: string, readonly tensors: Record<string, Tensor>, metadata: Record<string, string>) {
    const entries = Object.entries(tensors);
    if (entries.length === 0) throw new Error(`${path}: the file holds no tensors`);
    const sizes = new Set(entries.map(([, t]) => (t.ndim ? t.shape[0] : -1)));
    if (sizes.size !== 1 || sizes.has(-1)) {
      throw new Error(`${path}: every tensor must have the examples as its first dimension; got ${entries.map(([k, t]) => `${k} [${t.shape.join(', ')}]`).join(', ')}`);
    }
    this.size = [...sizes][0]!;
    const scaling = metadata['loss_scaling'] ?? ('input_ids' in tensors ? 'tokens' : 'batches');
    if (scaling !== 'tokens' && scaling !== 'batches') throw new Error(`${path}: metadata loss_scaling must be 'tokens' or 'batches', got '${scaling}'`);
    this.lossScaling = scaling;
    this.labelNames = metadata['label_names'] ? (JSON.parse(metadata['label_names']) as string[]) : null;
  }

  static async open(path: string): Promise<TensorFileDataset> {
    const { tensors, metadata } = await loadSafetensors(path);
    keep(Object.values(tensors)); // the dataset owns them until dispose(), whatever scope opened it
    return new TensorFileDataset(path, tensors, metadata);
  }

  batch(indices: readonly number[]): Batch {
    for (const i of indices) {
      if (!Number.isInteger(i) || i < 0 || i >= this.size) throw new RangeError(`${this.path}: example ${i} out of range (${this.size} examples)`);
    }
    const index = tensor(BigInt64Array.from(indices, (i) => BigInt(i)));
    try {
      const out: Batch = {};
      for (const [name, t] of Object.entries(this.tensors)) out[name] = t.indexSelect(0, index);
      return out;
    } finally {
      index.dispose();
    }
  }

  describe(): string {
    return `${this.size} examples (${Object.entries(this.tensors).map(([k, t]) => `${k} [${t.shape.slice(1).join(', ')}]`).join(', ')}) from ${this.path}`;
  }

  dispose(): void {
    for (const t of Object.values(this.tensors)) t.dispose();
  }
}

/**
 * A dataset whose batches come from an inner TrainDataset (usually datasetFromLoader's); the
 * subclass keeps what it knows of its examples (file, task, skipped records) beside it.
 */
export abstract class LoaderBackedDataset implements TrainDataset {
  abstract readonly lossScaling: LossScaling;
  protected abstract readonly inner: TrainDataset;
  abstract readonly examples: readonly unknown[];

  get size(): number {
    return this.examples.length;
  }

  batch(indices: readonly number[]): Promise<Batch> {
    return Promise.resolve(this.inner.batch(indices));
  }

  describe(): string {
    return this.inner.describe();
  }
}

/**
 * The shape of a per-item loader (lib/data's PrefetchLoader has it): the items, an async load of
 * one item (decode, preprocess, tokenize) and a collate of loaded items into a batch.
 */
export interface ItemLoader<T, U> {
  readonly items: readonly T[];
  loadItem(item: T): Promise<U>;
  collate(loaded: U[], items: T[]): Batch;
}

/**
 * A TrainDataset over a per-item loader: the trainer picks the indices (its own seeded order,
 * the one the PyTorch reference reproduces), the loader loads them concurrently and collates.
 */
export function datasetFromLoader<T, U>(loader: ItemLoader<T, U>, lossScaling: LossScaling, description: string): TrainDataset {
  return {
    size: loader.items.length,
    lossScaling,
    async batch(indices) {
      const items = indices.map((i) => {
        const item = loader.items[i];
        if (item === undefined) throw new RangeError(`${description}: example ${i} out of range (${loader.items.length} examples)`);
        return item;
      });
      const loaded = await Promise.all(items.map((item) => loader.loadItem(item)));
      const batch = loader.collate(loaded, items);
      keep(Object.values(batch).filter((t): t is Tensor => t != null)); // the trainer disposes them after the step
      return batch;
    },
    describe: () => description,
  };
}
