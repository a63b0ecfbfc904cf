// Python-style indexing specs for Tensor.index(): t.index(0, slice(1, null, 2), null, '...').
import type { NativeIndex, TensorHandle } from './native-types.ts';

/** A slice start:end:step; null means "from the start" / "to the end" / step 1. */
export interface Slice {
  readonly kind: 'slice';
  readonly start: number | null;
  readonly end: number | null;
  readonly step: number | null;
}

export function slice(start: number | null = null, end: number | null = null, step: number | null = null): Slice {
  return { kind: 'slice', start, end, step };
}

/** One index position: an integer, a slice, ':' (everything), null (new axis), '...', a mask or index tensor. */
export type IndexSpec<T> = number | Slice | ':' | '...' | null | boolean | T;

export function encodeIndex<T>(spec: IndexSpec<T>, handleOf: (t: T) => TensorHandle): NativeIndex {
  if (spec === ':') return [null, null, null];
  if (spec === null) return null;
  if (spec === '...') return '...';
  if (typeof spec === 'number' || typeof spec === 'boolean') return spec;
  if (typeof spec === 'object' && (spec as Slice).kind === 'slice') {
    const s = spec as Slice;
    return [s.start, s.end, s.step];
  }
  return handleOf(spec as T);
}
