// Image files to 8-bit RGB: PNG, JPEG, BMP, TIFF, WebP through sharp (libvips), DICOM through
// ./dicom.ts. Like PIL's Image.convert('RGB'), which transformers' processors see: grey is
// replicated to three channels, alpha is dropped (not composited), EXIF orientation is ignored.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import sharp from 'sharp';
import { DataError } from '../errors.ts';
import { decodeDicom, looksLikeDicom, type DicomDecodeOptions } from './dicom.ts';
import type { RgbImage } from './types.ts';

export interface DecodeOptions {
  dicom?: DicomDecodeOptions;
}

// libvips keeps a cache of decoded images; a training run touches each file once per epoch.
sharp.cache(false);

async function readBytes(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new DataError({ file }, e.code === 'ENOENT' ? 'image file not found' : `cannot read image: ${e.message}`);
  }
}

/** Whether an RGB buffer is grey (X-rays saved as RGB); stops at the first coloured pixel. */
function channelsEqual(rgb: Uint8Array): boolean {
  for (let i = 0; i < rgb.length; i += 3) if (rgb[i] !== rgb[i + 1] || rgb[i] !== rgb[i + 2]) return false;
  return true;
}

/** Decodes encoded image bytes (any format sharp reads) to RGB. */
export async function decodeEncoded(bytes: Uint8Array, file: string): Promise<RgbImage> {
  try {
    const image = sharp(bytes, { failOn: 'error', limitInputPixels: 2 ** 28 });
    const meta = await image.metadata();
    // Grey sources (with or without alpha) stay one plane until the end: replicated to RGB here,
    // flagged so resizing can work on a single plane.
    const greySource = (meta.channels ?? 3) <= 2 && meta.space !== 'cmyk';
    const pipeline = image.removeAlpha().toColourspace(greySource ? 'b-w' : 'srgb').raw({ depth: 'uchar' });
    const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
    if (info.channels === 3) {
      const rgb = new Uint8Array(data.buffer, data.byteOffset, data.length);
      return { width: info.width, height: info.height, data: rgb, ...(channelsEqual(rgb) ? { grey: true } : {}) };
    }
    if (info.channels === 1) {
      const rgb = new Uint8Array(info.width * info.height * 3);
      for (let i = 0; i < info.width * info.height; i++) rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = data[i]!;
      return { width: info.width, height: info.height, data: rgb, grey: true };
    }
    throw new Error(`unexpected ${info.channels} channels after conversion to RGB`);
  } catch (err) {
    if (err instanceof DataError) throw err;
    throw new DataError({ file }, `cannot decode image: ${(err as Error).message}`);
  }
}

/** Reads and decodes one image file; DICOM by extension (.dcm, .dicom) or by its 'DICM' marker. */
export async function decodeImage(file: string, opts: DecodeOptions = {}): Promise<RgbImage> {
  const bytes = await readBytes(file);
  const ext = extname(file).toLowerCase();
  const u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  if (ext === '.dcm' || ext === '.dicom' || looksLikeDicom(u8)) return decodeDicom(u8, file, opts.dicom);
  return decodeEncoded(u8, file);
}
