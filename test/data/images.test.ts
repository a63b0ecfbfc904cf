// Image decoding and preprocessing against transformers' image processors (AutoImageProcessor,
// which is the PIL backend in the reference environment) and pydicom, on PNGs and on pydicom's
// own DICOM test files (scripts/python/ref_images.py makes the fixtures).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decodeImage } from '../../lib/data/image/decode.ts';
import { readDicomPixels } from '../../lib/data/image/dicom.ts';
import { geometric, loadPreprocessor, preprocessImage, preprocessImageAsync, preprocessorFromConfig, shortestEdgeSize } from '../../lib/data/image/preprocess.ts';
import { resizeLikePil } from '../../lib/data/image/resample.ts';
import { DataError } from '../../lib/data/errors.ts';
import { cachedFixture } from '../helpers/python.ts';

const dir = cachedFixture('images', 'ref_images.py');
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
  processor_classes: Record<string, string>;
  images: { name: string; outputs: Record<string, number[]> }[];
  dicoms: string[];
};

function f32(file: string): Float32Array {
  const b = readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

describe('image preprocessing equals transformers (PIL backend) within 1/255', () => {
  it('uses the processors a user of the reference environment gets', () => {
    assert.deepEqual(manifest.processor_classes, { clip336: 'CLIPImageProcessorPil', vit224: 'ViTImageProcessorPil' });
  });
  for (const entry of manifest.images) {
    it(`${entry.name}: CLIP 336 (crop), CLIP 336 with LLaVA pad, ViT 224`, async () => {
      const img = await decodeImage(join(dir, 'images', entry.name));
      for (const [config, shape] of Object.entries(entry.outputs)) {
        const p = loadPreprocessor(join(dir, 'configs', config.replace('-pad', '')), { aspect: config.endsWith('-pad') ? 'pad' : 'none' });
        const out = preprocessImage(img, p);
        assert.deepEqual(Array.from((await preprocessImageAsync(img, p)).data), Array.from(out.data), 'async (thread pool) equals sync');
        assert.deepEqual(out.shape, shape, `${config} shape`);
        const ref = f32(join(dir, 'ref', `${entry.name}.${config}.f32`));
        const plane = shape[1]! * shape[2]!;
        let worst = 0;
        for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ref[i]! - out.data[i]!) * p.imageStd[Math.floor(i / plane)]!);
        // In pixel units (0..1 before normalization); the resampler is bit-exact with Pillow, so
        // what remains is float32 rounding.
        assert.ok(worst <= 1 / 255, `${entry.name} ${config}: max difference ${worst * 255} levels`);
        assert.ok(worst < 1e-6, `${entry.name} ${config}: expected float rounding only, got ${worst}`);
      }
    });
  }
});

describe('DICOM decoding against pydicom (modality LUT, VOI window, MONOCHROME1, min-max)', () => {
  for (const name of manifest.dicoms) {
    it(`${name}: 8-bit grey image equals pydicom's`, async () => {
      const ref = new Uint8Array(readFileSync(join(dir, 'ref', `${name}.u8`)));
      const img = await decodeImage(join(dir, 'images', name));
      assert.equal(img.width * img.height, ref.length);
      let worst = 0;
      for (let i = 0; i < ref.length; i++) {
        assert.equal(img.data[i * 3], img.data[i * 3 + 2]);
        worst = Math.max(worst, Math.abs(ref[i]! - img.data[i * 3]!));
      }
      assert.ok(worst <= 1, `${name}: max difference ${worst} levels`);
    });
  }
  it('reads the tags that drive the transforms', () => {
    const ct = readDicomPixels(new Uint8Array(readFileSync(join(dir, 'images', 'CT_small.dcm'))), 'CT_small.dcm');
    assert.equal(ct.windowed, false);
    assert.equal(ct.width, 128);
    // CT_small has RescaleIntercept -1024: modality values are Hounsfield units.
    assert.ok(Math.min(...ct.values) < 0);
    const mr = readDicomPixels(new Uint8Array(readFileSync(join(dir, 'images', 'MR_small.dcm'))), 'MR_small.dcm');
    assert.equal(mr.windowed, true);
    const m1 = readDicomPixels(new Uint8Array(readFileSync(join(dir, 'images', 'MR_small_monochrome1.dcm'))), 'x.dcm');
    assert.equal(m1.photometric, 'MONOCHROME1');
  });
  it('refuses compressed and truncated files with errors naming the file', async () => {
    await assert.rejects(decodeImage(join(dir, 'bad', 'JPEG2000.dcm')), (e: unknown) => e instanceof DataError && /JPEG2000\.dcm: compressed pixel data \(transfer syntax 1\.2\.840\.10008\.1\.2\.4\.91\)/.test((e as Error).message));
    await assert.rejects(decodeImage(join(dir, 'bad', 'MR_truncated.dcm')), (e: unknown) => e instanceof DataError && /MR_truncated\.dcm/.test((e as Error).message));
    await assert.rejects(decodeImage(join(dir, 'nope.png')), /nope\.png: image file not found/);
  });
});

describe('geometry by hand', () => {
  it('shortest-edge sizes truncate like transformers', () => {
    assert.deepEqual(shortestEdgeSize(97, 131, 336), { width: 336, height: 453 });
    assert.deepEqual(shortestEdgeSize(640, 512, 336), { width: 420, height: 336 });
  });
  it('pad to square centres the image on int(mean * 255)', () => {
    const img = { width: 1, height: 3, data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]) };
    const p = { ...preprocessorFromConfig({ image_processor_type: 'CLIPImageProcessor' }, 'x', { aspect: 'pad' }), doResize: false, doCenterCrop: false };
    const sq = geometric(img, p);
    assert.equal(sq.width, 3);
    // row 0: [fill, px0, fill]
    assert.deepEqual([...sq.data.subarray(0, 9)], [122, 116, 104, 1, 2, 3, 122, 116, 104]);
  });
  it('bad native arguments are TypeErrors naming the argument', () => {
    assert.throws(() => resizeLikePil({ width: 4, height: 4, data: new Uint8Array(5) }, 2, 2, 'bicubic'), /imagePreprocess\(\): argument 1: 5 bytes for a 4x4x3 image \(48 expected\)/);
    assert.throws(() => resizeLikePil({ width: 2, height: 2, data: new Uint8Array(12) }, 2, 3, 'cubic' as never), /unknown filter 'cubic'/);
  });
  it('resizing a constant image keeps it constant', () => {
    const data = new Uint8Array(50 * 30 * 3).fill(200);
    const out = resizeLikePil({ width: 50, height: 30, data }, 17, 41, 'bicubic');
    assert.ok(out.data.every((v) => v === 200));
  });
});
