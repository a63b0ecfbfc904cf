// Batches for BLIP-style models, keyed like the model's forward arguments:
//   VQA:      pixel_values, input_ids + attention_mask (questions), decoder_input_ids +
//             decoder_attention_mask (answers), labels (answers with pads -100)
//   captions: pixel_values, decoder_input_ids + decoder_attention_mask, labels (prompt and pads -100)
// Sequences are right-padded with [PAD] to the longest in the batch (padding='longest').
import type { Batch } from './collate.ts';
import { collatePixels } from './collate.ts';
import { DataError } from './errors.ts';
import type { ImagePreprocessor } from './image/preprocess.ts';
import { PrefetchLoader, type LoaderOptions } from './loader.ts';
import { loadPixels, type ImagePipelineOptions, type Pixels } from './pipelines.ts';
import type { BlipCaptionTokens, BlipTextBuilder, BlipVqaTokens } from './text/blip-examples.ts';
import { IGNORE_INDEX } from './text/vlm-examples.ts';
import type { ConversationExample, ReportExample } from './types.ts';
import { tensor } from '../torch/index.ts';

/** Salesforce BLIP's image transform for evaluation: bicubic resize to a square, CLIP's mean and std. */
export function blipPreprocessor(imageSize: number): ImagePreprocessor {
  return {
    kind: 'generic',
    doResize: true,
    size: { height: imageSize, width: imageSize },
    resample: 'bicubic',
    doCenterCrop: false,
    cropSize: { height: imageSize, width: imageSize },
    doRescale: true,
    rescaleFactor: 1 / 255,
    doNormalize: true,
    imageMean: [0.48145466, 0.4578275, 0.40821073],
    imageStd: [0.26862954, 0.26130258, 0.27577711],
    aspect: 'none',
  };
}

function padded(rows: readonly (readonly number[])[], fill: number): { ids: BigInt64Array; mask: BigInt64Array; shape: [number, number] } {
  const length = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * length).fill(BigInt(fill));
  const mask = new BigInt64Array(rows.length * length);
  rows.forEach((r, i) => r.forEach((v, j) => {
    ids[i * length + j] = BigInt(v);
    mask[i * length + j] = 1n;
  }));
  return { ids, mask, shape: [rows.length, length] };
}

export function collateBlipVqa(items: readonly Pick<BlipVqaTokens, 'question' | 'answer'>[], pad: number): Batch {
  if (items.length === 0) throw new RangeError('collateBlipVqa: empty batch');
  const q = padded(items.map((i) => i.question), pad);
  const a = padded(items.map((i) => i.answer), pad);
  const labels = BigInt64Array.from(a.ids, (v, k) => (a.mask[k] ? v : BigInt(IGNORE_INDEX)));
  return {
    input_ids: tensor(q.ids, { shape: q.shape }),
    attention_mask: tensor(q.mask, { shape: q.shape }),
    decoder_input_ids: tensor(a.ids, { shape: a.shape }),
    decoder_attention_mask: tensor(a.mask, { shape: a.shape }),
    labels: tensor(labels, { shape: a.shape }),
  };
}

export function collateBlipCaptions(items: readonly Pick<BlipCaptionTokens, 'ids' | 'labels'>[], pad: number): Batch {
  if (items.length === 0) throw new RangeError('collateBlipCaptions: empty batch');
  const d = padded(items.map((i) => i.ids), pad);
  const l = padded(items.map((i) => i.labels), IGNORE_INDEX);
  return {
    decoder_input_ids: tensor(d.ids, { shape: d.shape }),
    decoder_attention_mask: tensor(d.mask, { shape: d.shape }),
    labels: tensor(l.ids, { shape: l.shape }),
  };
}

/** VQA batches (VQA-RAD, SLAKE, PathVQA, conversation JSON with one question and answer each). */
export function blipVqaLoader(examples: readonly ConversationExample[], text: BlipTextBuilder, opts: ImagePipelineOptions & LoaderOptions):
  PrefetchLoader<ConversationExample, { tokens: BlipVqaTokens; pixels: Pixels }, Batch> {
  return new PrefetchLoader(
    examples,
    async (e) => {
      if (e.image === undefined) throw new DataError(e.source, `example '${e.id}' has no image`);
      return { tokens: await text.vqa(e), pixels: await loadPixels(e.image, e.source, opts) };
    },
    (loaded) => ({ ...collateBlipVqa(loaded.map((l) => l.tokens), text.ids.pad), pixel_values: collatePixels(loaded.map((l) => l.pixels)) }),
    opts,
  );
}

/** Report-generation batches (IU-Xray / MIMIC-CXR annotation.json): one view per study (`view`, default the first). */
export function blipReportLoader(examples: readonly ReportExample[], text: BlipTextBuilder, opts: ImagePipelineOptions & LoaderOptions & { view?: number }):
  PrefetchLoader<ReportExample, { tokens: BlipCaptionTokens; pixels: Pixels }, Batch> {
  const view = opts.view ?? 0;
  return new PrefetchLoader(
    examples,
    async (e) => {
      const image = e.images[view];
      if (image === undefined) throw new DataError(e.source, `study '${e.id}' has ${e.images.length} image(s); view ${view} was asked for`);
      return { tokens: await text.report(e), pixels: await loadPixels(image, e.source, opts) };
    },
    (loaded) => ({ ...collateBlipCaptions(loaded.map((l) => l.tokens), text.ids.pad), pixel_values: collatePixels(loaded.map((l) => l.pixels)) }),
    opts,
  );
}
