// A prefetching batch loader: while the consumer (a training step running on the native compute
// queue) works on batch i, batches i+1..i+prefetch are being read, decoded and collated. The
// queue is bounded, so memory stays at `prefetch` batches however slow the consumer is. Item
// loads within a batch run concurrently (sharp decodes on libuv's thread pool).
import { keep, Tensor } from '../torch/index.ts';

export interface LoaderOptions {
  batchSize: number;
  /** Shuffle the order each epoch (seeded); off means file order. */
  shuffle?: boolean;
  seed?: number;
  /** Drop a last, smaller batch. */
  dropLast?: boolean;
  /** Batches prepared ahead of the consumer (the bounded queue's size). Default 2. */
  prefetch?: number;
  /** Items of one batch loaded at once. Default 8. */
  concurrency?: number;
}

export interface LoaderStats {
  batches: number;
  /** Times the consumer asked for a batch that was not ready yet, and the total wait. */
  waits: number;
  waitMs: number;
}

/** A seeded permutation (xorshift32 Fisher-Yates), the same on every platform. */
export function permutation(n: number, seed: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  let s = (seed >>> 0) || 0x9e3779b9;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    const j = Math.floor((s / 2 ** 32) * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

function tensorsIn(value: unknown, out: Tensor[] = []): Tensor[] {
  if (value instanceof Tensor) out.push(value);
  else if (Array.isArray(value)) for (const v of value) tensorsIn(v, out);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) tensorsIn(v, out);
  return out;
}

async function mapLimited<T, U>(items: readonly T[], limit: number, fn: (item: T) => Promise<U>): Promise<U[]> {
  const out = new Array<U>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return out;
}

export class PrefetchLoader<T, U, B> {
  readonly stats: LoaderStats = { batches: 0, waits: 0, waitMs: 0 };

  constructor(
    readonly items: readonly T[],
    readonly loadItem: (item: T) => Promise<U>,
    readonly collate: (loaded: U[], items: T[]) => B,
    readonly opts: LoaderOptions,
  ) {
    if (!(opts.batchSize >= 1)) throw new RangeError(`batchSize must be >= 1, got ${opts.batchSize}`);
  }

  /** Number of batches in one epoch. */
  get length(): number {
    const n = this.items.length / this.opts.batchSize;
    return this.opts.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** The item order of an epoch. */
  order(epoch: number): number[] {
    return this.opts.shuffle ? permutation(this.items.length, (this.opts.seed ?? 0) * 1_000_003 + epoch) : this.items.map((_, i) => i);
  }

  /**
   * Iterates one epoch's batches. Tensors in a batch belong to the consumer (dispose them after
   * the step); batches prepared but never taken (an early `break`) are disposed here.
   */
  async *epoch(epoch = 0): AsyncGenerator<B> {
    const order = this.order(epoch);
    const bs = this.opts.batchSize;
    const batches: number[][] = [];
    for (let i = 0; i < order.length; i += bs) {
      const idx = order.slice(i, i + bs);
      if (idx.length < bs && this.opts.dropLast) break;
      batches.push(idx);
    }
    const depth = Math.max(1, this.opts.prefetch ?? 2);
    const concurrency = Math.max(1, this.opts.concurrency ?? 8);
    const queue: Promise<B>[] = [];
    let produced = 0;
    const produce = () => {
      while (queue.length < depth && produced < batches.length) {
        const idx = batches[produced++]!;
        const items = idx.map((i) => this.items[i]!);
        const p = mapLimited(items, concurrency, this.loadItem).then((loaded) => {
          const batch = this.collate(loaded, items);
          // The batch outlives any tidy() scope the producer happens to run in.
          keep(tensorsIn(batch));
          return batch;
        });
        p.catch(() => undefined); // surfaced when the consumer reaches it
        queue.push(p);
      }
    };
    let finished = false;
    try {
      produce();
      while (queue.length > 0) {
        const head = queue[0]!;
        let ready = false;
        void head.then(() => { ready = true; }, () => { ready = true; });
        await Promise.resolve();
        const t0 = performance.now();
        if (!ready) this.stats.waits++;
        const batch = await head;
        this.stats.waitMs += performance.now() - t0;
        queue.shift();
        produce();
        this.stats.batches++;
        yield batch;
      }
      finished = true;
    } finally {
      if (!finished) {
        for (const p of queue) p.then((b) => { for (const t of tensorsIn(b)) t.dispose(); }, () => undefined);
      }
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<B> {
    return this.epoch(0);
  }
}
