// Image-pipeline case: decode + CLIP ViT-L/14-336 preprocessing (shortest edge 336, bicubic,
// centre crop, normalize) in images/s, one image at a time and through the prefetching loader,
// against transformers' processor (PIL backend; scripts/python/bench_image_preprocess.py, which
// warms up and times inside its process, so interpreter start is not counted) on the same files;
// the sides alternate rounds. Optionally how far the resize paths we did not take are from
// Pillow's output (libtorch antialiased bicubic in float and in uint8, libvips' cubic).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeImage } from '../../../lib/data/image/decode.ts';
import { preprocessImage, preprocessImageAsync, preprocessorFromConfig, shortestEdgeSize } from '../../../lib/data/image/preprocess.ts';
import { resizeLikePil } from '../../../lib/data/image/resample.ts';
import { PrefetchLoader } from '../../../lib/data/loader.ts';
import { collatePixels } from '../../../lib/data/collate.ts';
import { F, PACKAGE_ROOT, tensor, tidy, getNumThreads } from '../../../lib/torch/index.ts';
import { ensurePythonEnv } from '../../setup/python-env.mjs';
import type { RgbImage } from '../../../lib/data/image/types.ts';
import { median, row, type CaseResult } from './common.ts';

// Synthetic chest-X-ray-like greyscale PNGs (smooth anatomy-ish gradients plus noise), the
// NIH ChestX-ray14 download's format, at `size` x `size`, written once.
async function makeImages(dir: string, count: number, size: number): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (let k = 0; k < count; k++) {
    const file = join(dir, `img${k}.png`);
    files.push(file);
    if (existsSync(file)) continue;
    const px = Buffer.alloc(size * size);
    let seed = k + 1;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        const lung = Math.exp(-(((x - size * 0.3) / (size * 0.15)) ** 2 + ((y - size * 0.5) / (size * 0.3)) ** 2)) + Math.exp(-(((x - size * 0.7) / (size * 0.15)) ** 2 + ((y - size * 0.5) / (size * 0.3)) ** 2));
        px[y * size + x] = Math.max(0, Math.min(255, 200 - 140 * lung + ((seed >>> 24) % 24) - 12));
      }
    }
    await sharp(px, { raw: { width: size, height: size, channels: 1 } }).toColourspace('b-w').png().toFile(file);
  }
  return files;
}

const clipConfig = {
  image_processor_type: 'CLIPImageProcessor', size: { shortest_edge: 336 }, crop_size: { height: 336, width: 336 }, resample: 3,
  do_center_crop: true, do_normalize: true, do_rescale: true, do_resize: true, rescale_factor: 1 / 255,
  image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711],
};
const pre = preprocessorFromConfig(clipConfig);

async function timeSerial(files: string[], repeats: number): Promise<number> {
  const t0 = performance.now();
  for (let r = 0; r < repeats; r++) for (const f of files) preprocessImage(await decodeImage(f), pre);
  return (repeats * files.length) / ((performance.now() - t0) / 1000);
}

async function timeLoader(files: string[], repeats: number): Promise<number> {
  const loader = new PrefetchLoader(files, async (f) => preprocessImageAsync(await decodeImage(f), pre), (xs) => ({ pixel_values: collatePixels(xs) }), { batchSize: 16, prefetch: 2, concurrency: 8 });
  const t0 = performance.now();
  let n = 0;
  for (let r = 0; r < repeats; r++) {
    for await (const b of loader.epoch(r)) {
      n += b['pixel_values']!.shape[0]!;
      b['pixel_values']!.dispose();
    }
  }
  return n / ((performance.now() - t0) / 1000);
}

function maxLevelDiff(a: Uint8Array | Float32Array, b: Uint8Array): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(Math.min(255, Math.max(0, Math.round(a[i]!))) - b[i]!));
  return m;
}

/** Max |difference| in 8-bit levels between alternative resize paths and Pillow's (ours is bit-exact). */
async function fidelity(img: RgbImage) {
  const target = shortestEdgeSize(img.width, img.height, 336);
  const pil = resizeLikePil(img, target.width, target.height, 'bicubic').data;
  const torchPath = (dtype: 'float32' | 'uint8') => tidy(() => {
    const chw = tensor(img.data, { shape: [img.height, img.width, 3] }).permute(2, 0, 1).unsqueeze(0);
    const input = dtype === 'float32' ? chw.float() : chw.contiguous();
    const out = F.interpolate(input, [target.height, target.width], 'bicubic', { antialias: true }).squeeze(0).permute(1, 2, 0).contiguous();
    return maxLevelDiff(out.float().toTypedArray() as Float32Array, pil);
  });
  let uint8: number | string;
  try { uint8 = torchPath('uint8'); } catch (e) { uint8 = `unsupported: ${(e as Error).message.split('\n')[0]}`; }
  const vips = await sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 3 } }).resize(target.width, target.height, { kernel: 'cubic' }).raw().toBuffer();
  return { libtorchFloatBicubicAA: torchPath('float32'), libtorchUint8BicubicAA: uint8, sharpCubic: maxLevelDiff(new Uint8Array(vips), pil) };
}

export interface ImagePipelineOptions { images: number; size: number; repeats: number; rounds?: number; fidelity?: boolean }

export async function imagePipeline(o: ImagePipelineOptions) {
  const { images: count, size, repeats } = o;
  const rounds = o.rounds ?? 1;
  const dir = join(PACKAGE_ROOT, '.cache', 'bench-images', `grey-${count}x${size}`);
  const files = await makeImages(dir, count, size);
  const python = ensurePythonEnv({ quiet: true });
  const pdir = join(dir, 'clip336');
  mkdirSync(pdir, { recursive: true });
  writeFileSync(join(pdir, 'preprocessor_config.json'), JSON.stringify(clipConfig));
  await timeSerial(files.slice(0, 2), 1); // warm-up
  const serial: number[] = [];
  const loader: number[] = [];
  const ref: number[] = [];
  let processor = '';
  for (let r = 0; r < rounds; r++) {
    serial.push(await timeSerial(files, repeats));
    loader.push(await timeLoader(files, repeats));
    const out = JSON.parse(execFileSync(python, [join(PACKAGE_ROOT, 'scripts/python/bench_image_preprocess.py'), pdir, String(repeats), ...files],
      { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } })) as { images_per_s: number; processor: string };
    ref.push(out.images_per_s);
    processor = out.processor;
  }
  const result = {
    images: count, size: `${size}x${size}`, repeats, rounds, threads: getNumThreads(),
    medtune: { serial_images_per_s: median(serial), loader_images_per_s: median(loader), serial_all: serial, loader_all: loader },
    pytorch: { processor, images_per_s: median(ref), all: ref },
    ratio_serial_vs_pytorch: median(serial) / median(ref),
    ratio_loader_vs_pytorch: median(loader) / median(ref),
  };
  if (!o.fidelity) return { ...result, max_level_difference_vs_pillow: null };
  // Fidelity on the chest-like image and on uniform noise (the worst case for overshoot).
  const chest = await decodeImage(files[0]!);
  let seed = 7;
  const noise = { width: 640, height: 512, data: Uint8Array.from({ length: 640 * 512 * 3 }, () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed >>> 24; }) };
  return { ...result, max_level_difference_vs_pillow: { chest: await fidelity({ ...chest, grey: false }), noise: await fidelity(noise) } };
}

/** The suite's rows: ms per image (1000 / images per s), serial and through the loader, against transformers. */
export async function imagePipelineCase(o: ImagePipelineOptions): Promise<CaseResult[]> {
  const r = await imagePipeline(o);
  const ms = (xs: number[]) => xs.map((x) => 1000 / x);
  const what = `${r.images} PNGs ${r.size}, CLIP 336`;
  return [
    row('image pipeline', `${what}: one at a time`, 'image', ms(r.medtune.serial_all), ms(r.pytorch.all), { processor: r.pytorch.processor }),
    row('image pipeline', `${what}: prefetching loader`, 'image', ms(r.medtune.loader_all), ms(r.pytorch.all), { processor: r.pytorch.processor }),
  ];
}
