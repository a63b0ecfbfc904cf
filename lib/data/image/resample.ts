// Resizing that reproduces Pillow's Image.resize on 8-bit images exactly (its Resample.c):
// separable convolution with the filter widened by the scale when downsampling (antialiasing),
// coefficients normalised per output pixel and rounded to 22-bit fixed point, horizontal pass
// first into an 8-bit intermediate (rounded and clipped), then the vertical pass, rows outside
// the vertical filter's reach skipped. transformers' image processors resize through PIL, so
// bit-equal resizing is what makes pixel values agree with them.
//
// Why not libtorch or sharp: libtorch's antialiased bicubic in float does not clip the 8-bit
// intermediate and differs by up to ~40 levels on high-contrast images; its uint8 kernels are
// within 1-2 levels; libvips' kernels are different filters. Measured in scripts/bench and the
// README's "Images" section.
import type { RgbImage } from './types.ts';

export type ResampleFilter = 'nearest' | 'bilinear' | 'bicubic' | 'lanczos' | 'box' | 'hamming';

/** PIL's resample enum values as preprocessor_config.json stores them. */
export const PIL_RESAMPLE: Record<number, ResampleFilter> = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming' };

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

interface Filter {
  support: number;
  fn: (x: number) => number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

const FILTERS: Record<Exclude<ResampleFilter, 'nearest'>, Filter> = {
  box: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: { support: 1, fn: (x) => { const a = Math.abs(x); return a < 1 ? 1 - a : 0; } },
  hamming: {
    support: 1,
    fn: (x) => {
      const a = Math.abs(x);
      if (a === 0) return 1;
      if (a >= 1) return 0;
      const px = a * Math.PI;
      return (Math.sin(px) / px) * (0.54 + 0.46 * Math.cos(px));
    },
  },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

interface Coeffs {
  ksize: number;
  /** [xmin, count] per output position */
  bounds: Int32Array;
  /** fixed-point weights, ksize per output position */
  weights: Int32Array;
}

function precompute(inSize: number, in0: number, in1: number, outSize: number, filter: Filter): Coeffs {
  const scale = (in1 - in0) / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      const v = x < xmax ? (ww !== 0 ? k[x]! / ww : k[x]!) : 0;
      weights[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

function clip8(acc: number): number {
  if (acc >= ONE * 256) return 255;
  if (acc <= 0) return 0;
  return Math.floor(acc / ONE);
}

const HALF = 2 ** (PRECISION_BITS - 1);

function horizontal(src: Uint8Array, srcWidth: number, rowOffset: number, rows: number, outWidth: number, c: Coeffs): Uint8Array {
  const out = new Uint8Array(rows * outWidth * 3);
  const { ksize, bounds, weights } = c;
  for (let y = 0; y < rows; y++) {
    const rowBase = (y + rowOffset) * srcWidth * 3;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = bounds[xx * 2]!;
      const count = bounds[xx * 2 + 1]!;
      const kBase = xx * ksize;
      let r = HALF, g = HALF, b = HALF;
      let p = rowBase + xmin * 3;
      for (let x = 0; x < count; x++, p += 3) {
        const w = weights[kBase + x]!;
        r += src[p]! * w;
        g += src[p + 1]! * w;
        b += src[p + 2]! * w;
      }
      const o = (y * outWidth + xx) * 3;
      out[o] = clip8(r);
      out[o + 1] = clip8(g);
      out[o + 2] = clip8(b);
    }
  }
  return out;
}

function vertical(src: Uint8Array, width: number, outHeight: number, c: Coeffs, rowShift: number): Uint8Array {
  const out = new Uint8Array(outHeight * width * 3);
  const { ksize, bounds, weights } = c;
  const stride = width * 3;
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = bounds[yy * 2]! - rowShift;
    const count = bounds[yy * 2 + 1]!;
    const kBase = yy * ksize;
    for (let i = 0; i < stride; i++) {
      let acc = HALF;
      let p = ymin * stride + i;
      for (let y = 0; y < count; y++, p += stride) acc += src[p]! * weights[kBase + y]!;
      out[yy * stride + i] = clip8(acc);
    }
  }
  return out;
}

function nearest(img: RgbImage, width: number, height: number): RgbImage {
  // PIL's NEAREST: source coordinate floor((x + 0.5) * scale).
  const out = new Uint8Array(width * height * 3);
  const sx = img.width / width;
  const sy = img.height / height;
  for (let y = 0; y < height; y++) {
    const yi = Math.min(img.height - 1, Math.floor((y + 0.5) * sy));
    for (let x = 0; x < width; x++) {
      const xi = Math.min(img.width - 1, Math.floor((x + 0.5) * sx));
      const s = (yi * img.width + xi) * 3;
      const o = (y * width + x) * 3;
      out[o] = img.data[s]!;
      out[o + 1] = img.data[s + 1]!;
      out[o + 2] = img.data[s + 2]!;
    }
  }
  return { width, height, data: out };
}

/** Image.resize((width, height), filter) on an RGB image, bit-exact with Pillow. */
export function resizeLikePil(img: RgbImage, width: number, height: number, filter: ResampleFilter): RgbImage {
  if (!(width > 0 && height > 0)) throw new RangeError(`resize: target size ${width}x${height} must be positive`);
  if (width === img.width && height === img.height) return { width, height, data: img.data.slice() };
  if (filter === 'nearest') return nearest(img, width, height);
  const f = FILTERS[filter];
  const needH = width !== img.width;
  const needV = height !== img.height;
  const ch = precompute(img.width, 0, img.width, width, f);
  const cv = precompute(img.height, 0, img.height, height, f);
  let data = img.data;
  let curWidth = img.width;
  let rowShift = 0;
  if (needH) {
    // Only the source rows the vertical pass will read are resampled horizontally.
    const first = needV ? cv.bounds[0]! : 0;
    const last = needV ? cv.bounds[(height - 1) * 2]! + cv.bounds[(height - 1) * 2 + 1]! : img.height;
    data = horizontal(data, img.width, first, last - first, width, ch);
    curWidth = width;
    rowShift = first;
  }
  if (needV) data = vertical(data, curWidth, height, cv, rowShift);
  return { width, height: needV ? height : img.height, data };
}
