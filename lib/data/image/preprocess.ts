// Image preprocessing as transformers' image processors do it (the PIL backend:
// CLIPImageProcessorPil / ViTImageProcessorPil, which AutoImageProcessor gives without
// torchvision), configured from preprocessor_config.json, plus LLaVA's image_aspect_ratio 'pad'
// (expand2square with the mean colour). Output: float32 CHW pixel values.
import { readFileSync } from 'node:fs';
import { DataError } from '../errors.ts';
import { parseJson } from '../json-source.ts';
import { PIL_RESAMPLE, resizeLikePil, type ResampleFilter } from './resample.ts';
import type { RgbImage } from './types.ts';

export type SizeSpec = { shortestEdge: number } | { height: number; width: number };

export interface ImagePreprocessor {
  kind: 'clip' | 'vit' | 'generic';
  doResize: boolean;
  size: SizeSpec;
  resample: ResampleFilter;
  doCenterCrop: boolean;
  cropSize: { height: number; width: number };
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  /** LLaVA's image_aspect_ratio: 'pad' pads to a square with the mean colour before preprocessing. */
  aspect: 'none' | 'pad';
}

const OPENAI_CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];
const IMAGENET_STANDARD: [number, number, number] = [0.5, 0.5, 0.5];

function triple(v: unknown, file: string, field: string, fallback: [number, number, number]): [number, number, number] {
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'number') return [v, v, v];
  if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number')) return v as [number, number, number];
  throw new DataError({ file, field }, 'expected a number or three numbers');
}

function parseSize(v: unknown, file: string, field: string, defaultToSquare: boolean): SizeSpec {
  if (typeof v === 'number') return defaultToSquare ? { height: v, width: v } : { shortestEdge: v };
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o['shortest_edge'] === 'number') return { shortestEdge: o['shortest_edge'] };
    if (typeof o['height'] === 'number' && typeof o['width'] === 'number') return { height: o['height'], width: o['width'] };
  }
  throw new DataError({ file, field }, `unsupported size ${JSON.stringify(v)} (expected a number, {shortest_edge} or {height, width})`);
}

/**
 * Builds the preprocessor from a parsed preprocessor_config.json. CLIP-type processors default to
 * shortest-edge resize + center crop (bicubic); ViT-type to a square resize (bilinear), no crop.
 */
export function preprocessorFromConfig(config: Record<string, unknown>, file = 'preprocessor_config.json', opts: { aspect?: 'none' | 'pad' } = {}): ImagePreprocessor {
  const type = String(config['image_processor_type'] ?? config['feature_extractor_type'] ?? '');
  const kind = /clip/i.test(type) ? 'clip' : /vit/i.test(type) ? 'vit' : 'generic';
  const isClip = kind === 'clip';
  const resampleRaw = config['resample'] ?? (isClip ? 3 : 2);
  const resample = PIL_RESAMPLE[Number(resampleRaw)];
  if (!resample) throw new DataError({ file, field: 'resample' }, `unknown PIL resample value ${JSON.stringify(resampleRaw)}`);
  const size = parseSize(config['size'] ?? (isClip ? { shortest_edge: 224 } : { height: 224, width: 224 }), file, 'size', !isClip);
  const crop = config['crop_size'] ?? (isClip ? 224 : undefined);
  const cropSpec = crop === undefined ? { height: 224, width: 224 } : parseSize(crop, file, 'crop_size', true);
  if ('shortestEdge' in cropSpec) throw new DataError({ file, field: 'crop_size' }, 'crop_size must be square or {height, width}');
  const bool = (k: string, d: boolean) => (config[k] === undefined ? d : Boolean(config[k]));
  return {
    kind,
    doResize: bool('do_resize', true),
    size,
    resample,
    doCenterCrop: bool('do_center_crop', isClip),
    cropSize: cropSpec,
    doRescale: bool('do_rescale', true),
    rescaleFactor: typeof config['rescale_factor'] === 'number' ? config['rescale_factor'] : 1 / 255,
    doNormalize: bool('do_normalize', true),
    imageMean: triple(config['image_mean'], file, 'image_mean', isClip ? OPENAI_CLIP_MEAN : IMAGENET_STANDARD),
    imageStd: triple(config['image_std'], file, 'image_std', isClip ? OPENAI_CLIP_STD : IMAGENET_STANDARD),
    aspect: opts.aspect ?? 'none',
  };
}

/** Reads preprocessor_config.json from a file or a model directory. */
export function loadPreprocessor(pathOrDir: string, opts: { aspect?: 'none' | 'pad' } = {}): ImagePreprocessor {
  const file = pathOrDir.endsWith('.json') ? pathOrDir : `${pathOrDir}/preprocessor_config.json`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new DataError({ file }, 'file not found');
  }
  const config = parseJson(text, file);
  if (!config || typeof config !== 'object' || Array.isArray(config)) throw new DataError({ file }, 'expected a JSON object');
  return preprocessorFromConfig(config as Record<string, unknown>, file, opts);
}

/** LLaVA's expand2square: the image centred on a square of colour int(mean * 255). */
export function padToSquare(img: RgbImage, mean: readonly number[]): RgbImage {
  if (img.width === img.height) return img;
  const side = Math.max(img.width, img.height);
  const fill = mean.map((m) => Math.trunc(m * 255));
  const data = new Uint8Array(side * side * 3);
  for (let i = 0; i < side * side; i++) {
    data[i * 3] = fill[0]!;
    data[i * 3 + 1] = fill[1]!;
    data[i * 3 + 2] = fill[2]!;
  }
  const x0 = img.width > img.height ? 0 : Math.floor((side - img.width) / 2);
  const y0 = img.width > img.height ? Math.floor((side - img.height) / 2) : 0;
  for (let y = 0; y < img.height; y++) {
    data.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), ((y + y0) * side + x0) * 3);
  }
  return { width: side, height: side, data };
}

/** transformers' get_resize_output_image_size(default_to_square=False): short edge to `size`. */
export function shortestEdgeSize(width: number, height: number, size: number): { width: number; height: number } {
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((size * long) / short);
  return width <= height ? { width: size, height: newLong } : { width: newLong, height: size };
}

/** transformers' center_crop, zero-padding when the crop is larger than the image. */
export function centerCrop(img: RgbImage, height: number, width: number): RgbImage {
  let top = Math.floor((img.height - height) / 2);
  let left = Math.floor((img.width - width) / 2);
  let src = img;
  if (top < 0 || left < 0 || top + height > img.height || left + width > img.width) {
    const nh = Math.max(height, img.height);
    const nw = Math.max(width, img.width);
    const tp = Math.ceil((nh - img.height) / 2);
    const lp = Math.ceil((nw - img.width) / 2);
    const data = new Uint8Array(nh * nw * 3);
    for (let y = 0; y < img.height; y++) data.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), ((y + tp) * nw + lp) * 3);
    src = { width: nw, height: nh, data, ...(img.grey ? { grey: true } : {}) };
    top += tp;
    left += lp;
  }
  const out = new Uint8Array(height * width * 3);
  for (let y = 0; y < height; y++) {
    const s = ((top + y) * src.width + left) * 3;
    out.set(src.data.subarray(s, s + width * 3), y * width * 3);
  }
  return { width, height, data: out, ...(img.grey ? { grey: true } : {}) };
}

/** The 8-bit image after padding, resizing and cropping, before rescale/normalize. */
export function geometric(img: RgbImage, p: ImagePreprocessor): RgbImage {
  let out = p.aspect === 'pad' ? padToSquare(img, p.imageMean) : img;
  if (p.doResize) {
    const target = 'shortestEdge' in p.size ? shortestEdgeSize(out.width, out.height, p.size.shortestEdge) : p.size;
    out = resizeLikePil(out, target.width, target.height, p.resample);
  }
  if (p.doCenterCrop) out = centerCrop(out, p.cropSize.height, p.cropSize.width);
  return out;
}

/**
 * Rescale and normalize to float32 CHW, in the same float32 arithmetic as numpy in transformers
 * (rescale in float64 then cast, normalize in float32).
 */
export function toPixelValues(img: RgbImage, p: ImagePreprocessor): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    const mean = f(p.imageMean[c]!);
    const std = f(p.imageStd[c]!);
    for (let i = 0; i < n; i++) {
      let v = img.data[i * 3 + c]!;
      if (p.doRescale) v = f(v * p.rescaleFactor);
      if (p.doNormalize) v = f(f(v - mean) / std);
      out[c * n + i] = v;
    }
  }
  return out;
}

/** Output [channels, height, width] for a preprocessed image. */
export function outputShape(img: RgbImage): [number, number, number] {
  return [3, img.height, img.width];
}

/** The full pipeline: pixel values (float32, CHW) and their shape. */
export function preprocessImage(img: RgbImage, p: ImagePreprocessor): { data: Float32Array; shape: [number, number, number] } {
  const g = geometric(img, p);
  return { data: toPixelValues(g, p), shape: outputShape(g) };
}
