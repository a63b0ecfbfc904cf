// Batches as name -> Tensor maps keyed like the HF forward arguments (input_ids,
// attention_mask, labels, pixel_values), built with lib/torch's tensor API.
import { tensor, type Tensor } from '../torch/index.ts';
import { IGNORE_INDEX, type TrainingExample } from './text/vlm-examples.ts';

export type Batch = Record<string, Tensor>;

/**
 * Right-pads token sequences to the longest in the batch: input_ids with `padId`, labels with
 * -100, attention_mask 1 for tokens and 0 for padding. All int64 [batch, length].
 */
export function collateTokens(examples: readonly Pick<TrainingExample, 'inputIds' | 'labels'>[], padId: number): Batch {
  if (examples.length === 0) throw new RangeError('collateTokens: empty batch');
  const length = Math.max(...examples.map((e) => e.inputIds.length));
  const b = examples.length;
  const ids = new BigInt64Array(b * length).fill(BigInt(padId));
  const mask = new BigInt64Array(b * length);
  const labels = new BigInt64Array(b * length).fill(BigInt(IGNORE_INDEX));
  examples.forEach((e, i) => {
    if (e.labels.length !== e.inputIds.length) throw new RangeError(`collateTokens: example ${i} has ${e.inputIds.length} ids but ${e.labels.length} labels`);
    e.inputIds.forEach((id, j) => {
      ids[i * length + j] = BigInt(id);
      mask[i * length + j] = 1n;
      labels[i * length + j] = BigInt(e.labels[j]!);
    });
  });
  const shape = [b, length];
  return { input_ids: tensor(ids, { shape }), attention_mask: tensor(mask, { shape }), labels: tensor(labels, { shape }) };
}

/** Stacks preprocessed images (float32 CHW, all the same shape) into pixel_values [B, C, H, W]. */
export function collatePixels(images: readonly { data: Float32Array; shape: readonly number[] }[]): Tensor {
  if (images.length === 0) throw new RangeError('collatePixels: empty batch');
  const shape = images[0]!.shape;
  const per = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(images.length * per);
  images.forEach((img, i) => {
    if (img.shape.join('x') !== shape.join('x')) throw new RangeError(`collatePixels: image ${i} is ${img.shape.join('x')}, image 0 is ${shape.join('x')}`);
    out.set(img.data, i * per);
  });
  return tensor(out, { shape: [images.length, ...shape] });
}

/** Multi-label targets [B, L] float32; unknown labels (NaN) stay NaN for a masked loss. */
export function collateLabels(labels: readonly (readonly number[])[]): Tensor {
  const n = labels[0]?.length ?? 0;
  const out = new Float32Array(labels.length * n);
  labels.forEach((row, i) => out.set(row, i * n));
  return tensor(out, { shape: [labels.length, n] });
}
