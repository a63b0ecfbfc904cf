// Image preprocessing as transformers' image processors do it (the PIL backend:
// CLIPImageProcessorPil / ViTImageProcessorPil, which AutoImageProcessor gives without
// torchvision), configured from preprocessor_config.json, plus LLaVA's image_aspect_ratio 'pad'
// (expand2square with the mean colour). Output: float32 CHW pixel values.
import { readFileSync } from 'node:fs';
import { DataError } from '../errors.ts';
import { parseJson } from '../json-source.ts';
import { nativePart } from '../../torch/native.ts';
import type { DataAddon, NativeImagePlan } from '../native-types.ts';
import { PIL_RESAMPLE, nativeInput, type ResampleFilter } from './resample.ts';
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

/** transformers' get_resize_output_image_size(default_to_square=False): short edge to `size`. */
export function shortestEdgeSize(width: number, height: number, size: number): { width: number; height: number } {
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((size * long) / short);
  return width <= height ? { width: size, height: newLong } : { width: newLong, height: size };
}

/** The native plan for one image: sizes worked out here exactly as transformers does. */
export function planFor(img: { width: number; height: number }, p: ImagePreprocessor, opts: { normalize?: boolean } = {}): NativeImagePlan {
  let w = img.width;
  let h = img.height;
  const plan: NativeImagePlan = { filter: p.resample };
  if (p.aspect === 'pad' && w !== h) {
    plan.padFill = p.imageMean.map((m) => Math.trunc(m * 255)) as [number, number, number];
    w = h = Math.max(w, h);
  }
  if (p.doResize) {
    const target = 'shortestEdge' in p.size ? shortestEdgeSize(w, h, p.size.shortestEdge) : p.size;
    if (target.width !== w || target.height !== h) plan.resize = [target.width, target.height];
  }
  if (p.doCenterCrop) plan.crop = [p.cropSize.height, p.cropSize.width];
  if (opts.normalize ?? true) {
    if (p.doRescale) plan.rescale = p.rescaleFactor;
    if (p.doNormalize) {
      plan.mean = [...p.imageMean];
      plan.std = [...p.imageStd];
    }
  }
  return plan;
}

/** The 8-bit image after padding, resizing and cropping, before rescale/normalize. */
export function geometric(img: RgbImage, p: ImagePreprocessor): RgbImage {
  const { pixels, channels } = nativeInput(img);
  const out = nativePart<DataAddon>().imagePreprocess(pixels, img.width, img.height, channels, planFor(img, p, { normalize: false }), false);
  const grey = img.grey && !(p.aspect === 'pad' && img.width !== img.height);
  return { width: out.width, height: out.height, data: out.data, ...(grey ? { grey: true } : {}) };
}

/**
 * Rescale and normalize an already resized image to float32 CHW, in numpy's float32 arithmetic
 * as transformers (rescale in float64 then cast, normalize in float32).
 */
export function toPixelValues(img: RgbImage, p: ImagePreprocessor): Float32Array {
  const { pixels, channels } = nativeInput(img);
  const plan = planFor(img, { ...p, aspect: 'none', doResize: false, doCenterCrop: false });
  return nativePart<DataAddon>().imagePreprocess(pixels, img.width, img.height, channels, plan, true).data;
}

export interface PixelValues {
  data: Float32Array;
  shape: [number, number, number];
}

/** The full pipeline in one native call: pixel values (float32, CHW) and their shape. */
export function preprocessImage(img: RgbImage, p: ImagePreprocessor): PixelValues {
  const { pixels, channels } = nativeInput(img);
  const out = nativePart<DataAddon>().imagePreprocess(pixels, img.width, img.height, channels, planFor(img, p), true);
  return { data: out.data, shape: [3, out.height, out.width] };
}

/** preprocessImage on libuv's thread pool, so several images are prepared in parallel off the main thread. */
export async function preprocessImageAsync(img: RgbImage, p: ImagePreprocessor): Promise<PixelValues> {
  const { pixels, channels } = nativeInput(img);
  const out = await nativePart<DataAddon>().imagePreprocessAsync(pixels, img.width, img.height, channels, planFor(img, p), true);
  return { data: out.data, shape: [3, out.height, out.width] };
}
