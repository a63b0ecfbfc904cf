// Image pipeline throughput: decode + CLIP ViT-L/14-336 preprocessing (shortest edge 336,
// bicubic, centre crop, normalize), in images/s, against transformers' processor (PIL backend)
// on the same files in the same run; plus how far the resize paths we did not take are from
// Pillow's output (libtorch antialiased bicubic in float and in uint8, libvips' cubic).
// The measuring lives in cases/image-pipeline.ts, which `npm run bench` runs too.
//
//   node --import tsx scripts/bench/image-pipeline.ts [--images 48] [--size 1024] [--repeats 2] [--json]
import { parseArgs } from 'node:util';
import { imagePipeline } from './cases/image-pipeline.ts';

const { values } = parseArgs({ options: { images: { type: 'string', default: '48' }, size: { type: 'string', default: '1024' }, repeats: { type: 'string', default: '2' }, json: { type: 'boolean', default: false } } });
const count = Number(values.images);
const size = Number(values.size);
const repeats = Number(values.repeats);
const result = await imagePipeline({ images: count, size, repeats, fidelity: true });
if (values.json) console.log(JSON.stringify(result));
else {
  console.log(`decode + CLIP 336 preprocessing, ${count} PNGs of ${size}x${size}, ${repeats} passes`);
  console.log(`  medtune, one image at a time   ${result.medtune.serial_images_per_s.toFixed(1)} images/s  (${result.ratio_serial_vs_pytorch.toFixed(2)}x transformers)`);
  console.log(`  medtune, prefetching loader    ${result.medtune.loader_images_per_s.toFixed(1)} images/s  (${result.ratio_loader_vs_pytorch.toFixed(2)}x transformers)`);
  console.log(`  transformers ${result.pytorch.processor}  ${result.pytorch.images_per_s.toFixed(1)} images/s`);
  console.log(`  resize paths not taken, max |difference| from Pillow in 8-bit levels: ${JSON.stringify(result.max_level_difference_vs_pillow)} (medtune's: 0)`);
}
