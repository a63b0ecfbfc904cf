// Training-time augmentation for classification, off unless asked for: torchvision's
// RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3, ten attempts then a centre crop) resized with
// the preprocessor's filter, and a horizontal flip with probability 0.5. Seeded, so a run can be
// repeated.
import { resizeLikePil, type ResampleFilter } from './resample.ts';
import type { RgbImage } from './types.ts';

export interface AugmentOptions {
  randomResizedCrop?: { size: { height: number; width: number }; scale?: [number, number]; ratio?: [number, number]; filter?: ResampleFilter };
  horizontalFlip?: boolean;
}

/** A small seeded generator (mulberry32). */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(a: number, b: number): number {
    return a + (b - a) * this.next();
  }
  int(lo: number, hiInclusive: number): number {
    return lo + Math.floor(this.next() * (hiInclusive - lo + 1));
  }
}

export function crop(img: RgbImage, top: number, left: number, height: number, width: number): RgbImage {
  const data = new Uint8Array(height * width * 3);
  for (let y = 0; y < height; y++) {
    const s = ((top + y) * img.width + left) * 3;
    data.set(img.data.subarray(s, s + width * 3), y * width * 3);
  }
  return { width, height, data, ...(img.grey ? { grey: true } : {}) };
}

export function flipHorizontal(img: RgbImage): RgbImage {
  const data = new Uint8Array(img.data.length);
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const s = (y * img.width + x) * 3;
      const d = (y * img.width + (img.width - 1 - x)) * 3;
      data[d] = img.data[s]!;
      data[d + 1] = img.data[s + 1]!;
      data[d + 2] = img.data[s + 2]!;
    }
  }
  return { width: img.width, height: img.height, data, ...(img.grey ? { grey: true } : {}) };
}

/** torchvision RandomResizedCrop.get_params: the crop box. */
export function randomResizedCropBox(width: number, height: number, rng: Rng, scale: [number, number] = [0.08, 1], ratio: [number, number] = [3 / 4, 4 / 3]): { top: number; left: number; height: number; width: number } {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])] as const;
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logRatio[0], logRatio[1]));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && h > 0 && w <= width && h <= height) return { top: rng.int(0, height - h), left: rng.int(0, width - w), height: h, width: w };
  }
  // Fallback: a centre crop at the nearest allowed aspect ratio.
  const inRatio = width / height;
  let w: number, h: number;
  if (inRatio < ratio[0]) { w = width; h = Math.round(w / ratio[0]); }
  else if (inRatio > ratio[1]) { h = height; w = Math.round(h * ratio[1]); }
  else { w = width; h = height; }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

export function augment(img: RgbImage, opts: AugmentOptions, rng: Rng): RgbImage {
  let out = img;
  const rrc = opts.randomResizedCrop;
  if (rrc) {
    const box = randomResizedCropBox(out.width, out.height, rng, rrc.scale, rrc.ratio);
    out = resizeLikePil(crop(out, box.top, box.left, box.height, box.width), rrc.size.width, rrc.size.height, rrc.filter ?? 'bicubic');
  }
  if (opts.horizontalFlip && rng.next() < 0.5) out = flipHorizontal(out);
  return out;
}
