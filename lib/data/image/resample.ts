// Resizing that reproduces Pillow's Image.resize on 8-bit images bit for bit, done natively
// (csrc/io/image_preprocess.cpp has the algorithm and why). transformers' image processors
// resize through PIL, so bit-equal resizing is what makes pixel values agree with them.
//
// Why not libtorch or sharp: libtorch's antialiased bicubic in float does not clip the 8-bit
// intermediate and differs by several levels (tens on noise upscaled); its uint8 kernel by 1-2
// levels; libvips' kernels are different filters. scripts/bench/image-pipeline.ts measures it.
import { nativePart } from '../../torch/native.ts';
import type { DataAddon } from '../native-types.ts';
import type { RgbImage } from './types.ts';

export type ResampleFilter = 'nearest' | 'bilinear' | 'bicubic' | 'lanczos' | 'box' | 'hamming';

/** PIL's resample enum values as preprocessor_config.json stores them. */
export const PIL_RESAMPLE: Record<number, ResampleFilter> = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming' };

/** The image as the native side takes it: one plane for grey images (same result, a third of the work). */
export function nativeInput(img: RgbImage): { pixels: Uint8Array; channels: 1 | 3 } {
  if (!img.grey) return { pixels: img.data, channels: 3 };
  const n = img.width * img.height;
  const plane = new Uint8Array(n);
  for (let i = 0; i < n; i++) plane[i] = img.data[i * 3]!;
  return { pixels: plane, channels: 1 };
}

/** Image.resize((width, height), filter) on an RGB image, bit-exact with Pillow. */
export function resizeLikePil(img: RgbImage, width: number, height: number, filter: ResampleFilter): RgbImage {
  if (!(width > 0 && height > 0)) throw new RangeError(`resize: target size ${width}x${height} must be positive`);
  const { pixels, channels } = nativeInput(img);
  const out = nativePart<DataAddon>().imagePreprocess(pixels, img.width, img.height, channels, { resize: [width, height], filter }, false);
  return { width: out.width, height: out.height, data: out.data, ...(img.grey ? { grey: true } : {}) };
}
