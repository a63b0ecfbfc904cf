// DICOM to an 8-bit RGB image, in the order radiology software applies the transforms:
// stored values -> modality LUT (RescaleSlope/RescaleIntercept) -> VOI LUT window (WindowCenter/
// WindowWidth with VOILUTFunction LINEAR, LINEAR_EXACT or SIGMOID, as pydicom's apply_voi_lut) ->
// min-max to 0..255 (truncating, as numpy's astype(uint8)) -> MONOCHROME1 inverted -> grey
// replicated to RGB. Uncompressed little/big endian, implicit/explicit VR and deflated files are
// read; compressed pixel data (JPEG, JPEG 2000, RLE...) is an error that says so.
import { inflateRawSync } from 'node:zlib';
import dicomParser from 'dicom-parser';
import { DataError } from '../errors.ts';
import type { RgbImage } from './types.ts';

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const DEFLATED_LE = '1.2.840.10008.1.2.1.99';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';
const UNCOMPRESSED = new Set([IMPLICIT_LE, EXPLICIT_LE, DEFLATED_LE, EXPLICIT_BE]);

export interface DicomDecodeOptions {
  /** Apply the file's VOI window (default true); false maps the full modality range instead. */
  voiWindow?: boolean;
  /** Override the window (center/width in modality units). */
  window?: { center: number; width: number };
}

export interface DicomPixels {
  width: number;
  height: number;
  photometric: string;
  /** Grey values after the modality LUT (and VOI window when applied), before 8-bit scaling. */
  values: Float64Array;
  windowed: boolean;
}

function isDicom(bytes: Uint8Array): boolean {
  return bytes.length > 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

function parse(bytes: Uint8Array, file: string): dicomParser.DataSet {
  const inflater = (arr: Uint8Array, position: number) => {
    const inflated = inflateRawSync(arr.subarray(position));
    const out = new Uint8Array(position + inflated.length);
    out.set(arr.subarray(0, position), 0);
    out.set(inflated, position);
    return out;
  };
  try {
    // Files without the 128-byte preamble and 'DICM' (older ACR-NEMA style) are implicit VR little endian.
    return isDicom(bytes)
      ? dicomParser.parseDicom(bytes, { inflater } as dicomParser.ParseDicomOptions)
      : dicomParser.parseDicom(bytes, { TransferSyntaxUID: IMPLICIT_LE } as dicomParser.ParseDicomOptions);
  } catch (err) {
    const message = err instanceof Error ? err.message : typeof err === 'string' ? err : (err as { exception?: string }).exception ?? String(err);
    throw new DataError({ file }, `not a readable DICOM file: ${message}`);
  }
}

function numbers(ds: dicomParser.DataSet, tag: string): number[] {
  const s = ds.string(tag);
  if (s === undefined || s.trim() === '') return [];
  return s.split('\\').map((v) => Number(v.trim())).filter((v) => Number.isFinite(v));
}

/** Reads the first frame's grey values with the modality LUT and VOI window applied. */
export function readDicomPixels(bytes: Uint8Array, file: string, opts: DicomDecodeOptions = {}): DicomPixels {
  const ds = parse(bytes, file);
  const syntax = (ds.string('x00020010') ?? (isDicom(bytes) ? EXPLICIT_LE : IMPLICIT_LE)).replace(/\0/g, '').trim();
  if (!UNCOMPRESSED.has(syntax)) {
    throw new DataError({ file }, `compressed pixel data (transfer syntax ${syntax}) is not supported; decompress first (e.g. 'gdcmconv --raw' or 'dcmdjpeg')`);
  }
  const rows = ds.uint16('x00280010');
  const cols = ds.uint16('x00280011');
  const bitsAllocated = ds.uint16('x00280100');
  const pixel = ds.elements['x7fe00010'];
  if (!rows || !cols || !bitsAllocated || !pixel) throw new DataError({ file }, 'no image: Rows, Columns, BitsAllocated or PixelData missing');
  const bitsStored = ds.uint16('x00280101') ?? bitsAllocated;
  const signed = ds.uint16('x00280103') === 1;
  const samples = ds.uint16('x00280002') ?? 1;
  const photometric = (ds.string('x00280004') ?? 'MONOCHROME2').trim().toUpperCase();
  if (samples !== 1 || !photometric.startsWith('MONOCHROME')) {
    throw new DataError({ file }, `${photometric} with ${samples} samples per pixel: only greyscale (MONOCHROME1/2) DICOM is read; convert colour DICOM to PNG`);
  }
  if (![8, 16, 32].includes(bitsAllocated)) throw new DataError({ file }, `BitsAllocated ${bitsAllocated} is not supported`);
  const n = rows * cols;
  const bytesPer = bitsAllocated / 8;
  if (pixel.length < n * bytesPer) throw new DataError({ file }, `PixelData holds ${pixel.length} bytes, a ${cols}x${rows} frame of ${bitsAllocated}-bit pixels needs ${n * bytesPer}`);
  const little = syntax !== EXPLICIT_BE;
  const view = new DataView(ds.byteArray.buffer, ds.byteArray.byteOffset + pixel.dataOffset, n * bytesPer);
  const values = new Float64Array(n);
  const mask = bitsStored >= 32 ? 0xffffffff : 2 ** bitsStored - 1;
  const signBit = 2 ** (bitsStored - 1);
  for (let i = 0; i < n; i++) {
    let v = bytesPer === 1 ? view.getUint8(i) : bytesPer === 2 ? view.getUint16(i * 2, little) : view.getUint32(i * 4, little);
    // Only BitsStored bits are the value; signed values are two's complement within them.
    v = bitsStored >= 32 ? v : v % (mask + 1);
    if (signed && v >= signBit) v -= 2 * signBit;
    values[i] = v;
  }
  const slope = ds.floatString('x00281053');
  const intercept = ds.floatString('x00281052');
  if (slope !== undefined || intercept !== undefined) {
    const s = slope ?? 1;
    const b = intercept ?? 0;
    for (let i = 0; i < n; i++) values[i] = values[i]! * s + b;
  }
  const centers = numbers(ds, 'x00281050');
  const widths = numbers(ds, 'x00281051');
  const window = opts.window ?? (centers.length && widths.length ? { center: centers[0]!, width: widths[0]! } : undefined);
  let windowed = false;
  if (window && (opts.voiWindow ?? true)) {
    // Output range of the window as pydicom's apply_windowing: the stored range through the modality LUT.
    let yMin = signed ? -(2 ** (bitsStored - 1)) : 0;
    let yMax = signed ? 2 ** (bitsStored - 1) - 1 : 2 ** bitsStored - 1;
    if (slope !== undefined && intercept !== undefined) {
      yMin = yMin * slope + intercept;
      yMax = yMax * slope + intercept;
    }
    applyWindow(values, window.center, window.width, yMin, yMax, (ds.string('x00281056') ?? 'LINEAR').trim().toUpperCase(), file);
    windowed = true;
  }
  return { width: cols, height: rows, photometric, values, windowed };
}

function applyWindow(v: Float64Array, center: number, width: number, yMin: number, yMax: number, fn: string, file: string): void {
  const range = yMax - yMin;
  if (fn === 'SIGMOID') {
    if (width <= 0) throw new DataError({ file, field: 'WindowWidth' }, `must be > 0 for SIGMOID, got ${width}`);
    for (let i = 0; i < v.length; i++) v[i] = range / (1 + Math.exp((-4 * (v[i]! - center)) / width)) + yMin;
    return;
  }
  if (fn === 'LINEAR_EXACT') {
    if (width <= 0) throw new DataError({ file, field: 'WindowWidth' }, `must be > 0 for LINEAR_EXACT, got ${width}`);
    const lo = center - width / 2;
    const hi = center + width / 2;
    for (let i = 0; i < v.length; i++) {
      const x = v[i]!;
      v[i] = x <= lo ? yMin : x > hi ? yMax : ((x - center) / width + 0.5) * range + yMin;
    }
    return;
  }
  if (fn !== 'LINEAR') throw new DataError({ file, field: 'VOILUTFunction' }, `unknown VOI LUT function '${fn}'`);
  if (width < 1) throw new DataError({ file, field: 'WindowWidth' }, `must be >= 1 for LINEAR, got ${width}`);
  const c = center - 0.5;
  const w = width - 1;
  const lo = c - w / 2;
  const hi = c + w / 2;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    v[i] = x <= lo ? yMin : x > hi ? yMax : ((x - c) / w + 0.5) * range + yMin;
  }
}

/** Min-max to 0..255 (truncating), MONOCHROME1 inverted, replicated to RGB. */
export function dicomToRgb(px: DicomPixels): RgbImage {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of px.values) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  const span = hi - lo;
  const invert = px.photometric === 'MONOCHROME1';
  const n = px.width * px.height;
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    let g = span > 0 ? Math.floor(((px.values[i]! - lo) / span) * 255) : 0;
    if (invert) g = 255 - g;
    data[i * 3] = data[i * 3 + 1] = data[i * 3 + 2] = g;
  }
  return { width: px.width, height: px.height, data, grey: true };
}

export function decodeDicom(bytes: Uint8Array, file: string, opts: DicomDecodeOptions = {}): RgbImage {
  return dicomToRgb(readDicomPixels(bytes, file, opts));
}

/** Whether bytes look like DICOM (the 'DICM' marker after the preamble). */
export function looksLikeDicom(bytes: Uint8Array): boolean {
  return isDicom(bytes);
}
