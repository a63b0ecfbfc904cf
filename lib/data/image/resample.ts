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

function horizontal(src: Uint8Array, srcWidth: number, rowOffset: number, rows: number, outWidth: number, c: Coeffs, ch: 1 | 3): Uint8Array {
  const out = new Uint8Array(rows * outWidth * ch);
  const { ksize, bounds, weights } = c;
  for (let y = 0; y < rows; y++) {
    const rowBase = (y + rowOffset) * srcWidth * ch;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = bounds[xx * 2]!;
      const count = bounds[xx * 2 + 1]!;
      const kBase = xx * ksize;
      const o = (y * outWidth + xx) * ch;
      if (ch === 1) {
        let acc = HALF;
        let p = rowBase + xmin;
        for (let x = 0; x < count; x++, p++) acc += src[p]! * weights[kBase + x]!;
        out[o] = clip8(acc);
        continue;
      }
      let r = HALF, g = HALF, b = HALF;
      let p = rowBase + xmin * 3;
      for (let x = 0; x < count; x++, p += 3) {
        const w = weights[kBase + x]!;
        r += src[p]! * w;
        g += src[p + 1]! * w;
        b += src[p + 2]! * w;
      }
      out[o] = clip8(r);
      out[o + 1] = clip8(g);
      out[o + 2] = clip8(b);
    }
  }
  return out;
}

function vertical(src: Uint8Array, width: number, outHeight: number, c: Coeffs, rowShift: number, ch: 1 | 3): Uint8Array {
  const out = new Uint8Array(outHeight * width * ch);
  const { ksize, bounds, weights } = c;
  const stride = width * ch;
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

/** Resizes 1- or 3-channel interleaved 8-bit data (two passes, as Pillow). */
function resizePlanes(data: Uint8Array, w: number, h: number, width: number, height: number, f: Filter, ch: 1 | 3): Uint8Array {
  const needH = width !== w;
  const needV = height !== h;
  const cH = precompute(w, 0, w, width, f);
  const cV = precompute(h, 0, h, height, f);
  let out = data;
  let curWidth = w;
  let rowShift = 0;
  if (needH) {
    // Only the source rows the vertical pass will read are resampled horizontally.
    const first = needV ? cV.bounds[0]! : 0;
    const last = needV ? cV.bounds[(height - 1) * 2]! + cV.bounds[(height - 1) * 2 + 1]! : h;
    out = horizontal(out, w, first, last - first, width, cH, ch);
    curWidth = width;
    rowShift = first;
  }
  if (needV) out = vertical(out, curWidth, height, cV, rowShift, ch);
  return out;
}

/**
 * Image.resize((width, height), filter) on an RGB image, bit-exact with Pillow. Grey images
 * (decoded from greyscale files, all channels equal) are resized as one plane: the same result,
 * a third of the work.
 */
export function resizeLikePil(img: RgbImage, width: number, height: number, filter: ResampleFilter): RgbImage {
  if (!(width > 0 && height > 0)) throw new RangeError(`resize: target size ${width}x${height} must be positive`);
  if (width === img.width && height === img.height) return { ...img, data: img.data.slice() };
  if (filter === 'nearest') return { ...nearest(img, width, height), ...(img.grey ? { grey: true } : {}) };
  const f = FILTERS[filter];
  if (!img.grey) return { width, height, data: resizePlanes(img.data, img.width, img.height, width, height, f, 3) };
  const n = img.width * img.height;
  const plane = new Uint8Array(n);
  for (let i = 0; i < n; i++) plane[i] = img.data[i * 3]!;
  const small = resizePlanes(plane, img.width, img.height, width, height, f, 1);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < small.length; i++) data[i * 3] = data[i * 3 + 1] = data[i * 3 + 2] = small[i]!;
  return { width, height, data, grey: true };
}
