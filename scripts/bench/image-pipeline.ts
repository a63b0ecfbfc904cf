// Image pipeline throughput: decode + CLIP ViT-L/14-336 preprocessing (shortest edge 336,
// bicubic, centre crop, normalize), in images/s, against transformers' processor (PIL backend)
// on the same files in the same run; plus how far the resize paths we did not take are from
// Pillow's output (libtorch antialiased bicubic in float and in uint8, libvips' cubic).
//
//   node --import tsx scripts/bench/image-pipeline.ts [--images 48] [--size 1024] [--repeats 2] [--json]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { decodeImage } from '../../lib/data/image/decode.ts';
import { preprocessImage, preprocessImageAsync, preprocessorFromConfig, shortestEdgeSize } from '../../lib/data/image/preprocess.ts';
import { resizeLikePil } from '../../lib/data/image/resample.ts';
import { PrefetchLoader } from '../../lib/data/loader.ts';
import { collatePixels } from '../../lib/data/collate.ts';
import { F, tensor, tidy, getNumThreads } from '../../lib/torch/index.ts';
import { ensurePythonEnv } from '../setup/python-env.mjs';
import type { RgbImage } from '../../lib/data/image/types.ts';

const { values } = parseArgs({ options: { images: { type: 'string', default: '48' }, size: { type: 'string', default: '1024' }, repeats: { type: 'string', default: '2' }, json: { type: 'boolean', default: false } } });
const count = Number(values.images);
const size = Number(values.size);
const repeats = Number(values.repeats);
const root = join(import.meta.dirname, '..', '..');
const dir = join(root, '.cache', 'bench-images', `grey-${count}x${size}`);

// Synthetic chest-X-ray-like greyscale PNGs (smooth anatomy-ish gradients plus noise), the
// NIH ChestX-ray14 download's format, at `size` x `size`, written once.
async function makeImages(): Promise<string[]> {
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

async function timeSerial(files: string[]): Promise<number> {
  const t0 = performance.now();
  for (let r = 0; r < repeats; r++) for (const f of files) preprocessImage(await decodeImage(f), pre);
  return (repeats * files.length) / ((performance.now() - t0) / 1000);
}

async function timeLoader(files: string[]): Promise<number> {
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

const files = await makeImages();
await timeSerial(files.slice(0, 2)); // warm-up
const serial = await timeSerial(files);
const loader = await timeLoader(files);
const python = ensurePythonEnv({ quiet: true });
const pdir = join(dir, 'clip336');
mkdirSync(pdir, { recursive: true });
writeFileSync(join(pdir, 'preprocessor_config.json'), JSON.stringify(clipConfig));
const ref = JSON.parse(execFileSync(python, [join(root, 'scripts/python/bench_image_preprocess.py'), pdir, String(repeats), ...files], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } })) as { images_per_s: number; processor: string };
// Fidelity on the chest-like image and on uniform noise (the worst case for overshoot).
const chest = await decodeImage(files[0]!);
let seed = 7;
const noise = { width: 640, height: 512, data: Uint8Array.from({ length: 640 * 512 * 3 }, () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed >>> 24; }) };
const result = {
  images: count, size: `${size}x${size}`, repeats, threads: getNumThreads(),
  medtune: { serial_images_per_s: serial, loader_images_per_s: loader },
  pytorch: { processor: ref.processor, images_per_s: ref.images_per_s },
  ratio_serial_vs_pytorch: serial / ref.images_per_s,
  ratio_loader_vs_pytorch: loader / ref.images_per_s,
  max_level_difference_vs_pillow: { chest: await fidelity({ ...chest, grey: false }), noise: await fidelity(noise) },
};
if (values.json) console.log(JSON.stringify(result));
else {
  console.log(`decode + CLIP 336 preprocessing, ${count} PNGs of ${size}x${size}, ${repeats} passes`);
  console.log(`  medtune, one image at a time   ${serial.toFixed(1)} images/s  (${result.ratio_serial_vs_pytorch.toFixed(2)}x transformers)`);
  console.log(`  medtune, prefetching loader    ${loader.toFixed(1)} images/s  (${result.ratio_loader_vs_pytorch.toFixed(2)}x transformers)`);
  console.log(`  transformers ${ref.processor}  ${ref.images_per_s.toFixed(1)} images/s`);
  console.log(`  resize paths not taken, max |difference| from Pillow in 8-bit levels: ${JSON.stringify(result.max_level_difference_vs_pillow)} (medtune's: 0)`);
}
