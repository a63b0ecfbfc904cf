// Ready-made loaders for the two kinds of training data: image classification batches
// {pixel_values, labels} and VLM batches {input_ids, attention_mask, labels, pixel_values}.
import { isAbsolute, join } from 'node:path';
import { collateLabels, collatePixels, collateTokens, type Batch } from './collate.ts';
import { DataError } from './errors.ts';
import { augment, Rng, type AugmentOptions } from './image/augment.ts';
import { decodeImage } from './image/decode.ts';
import type { DicomDecodeOptions } from './image/dicom.ts';
import { geometric, preprocessImageAsync, toPixelValues, type ImagePreprocessor } from './image/preprocess.ts';
import { PrefetchLoader, type LoaderOptions } from './loader.ts';
import type { VlmExampleBuilder } from './text/vlm-examples.ts';
import type { ClassificationExample, ConversationExample, SourceRef } from './types.ts';

export interface ImagePipelineOptions {
  /** Folder the dataset's image paths are relative to. */
  imageRoot: string;
  preprocessor: ImagePreprocessor;
  /** Off unless given. */
  augment?: AugmentOptions;
  seed?: number;
  dicom?: DicomDecodeOptions;
}

export interface Pixels {
  data: Float32Array;
  shape: [number, number, number];
}

/** Decodes and preprocesses one image of a record; a missing/corrupt image names the record too. */
export async function loadPixels(image: string, source: SourceRef, opts: ImagePipelineOptions, rng?: Rng): Promise<Pixels> {
  const path = isAbsolute(image) ? image : join(opts.imageRoot, image);
  let img;
  try {
    img = await decodeImage(path, opts.dicom ? { dicom: opts.dicom } : {});
  } catch (err) {
    if (err instanceof DataError) throw new DataError({ file: source.file, line: source.line, field: 'image' }, err.message);
    throw err;
  }
  const p = opts.preprocessor;
  const aug = opts.augment;
  if (!aug || !rng) return preprocessImageAsync(img, p);
  let g;
  if (aug.randomResizedCrop) g = augment(img, aug, rng);
  else {
    g = geometric(img, p);
    if (aug.horizontalFlip) g = augment(g, { horizontalFlip: true }, rng);
  }
  return { data: toPixelValues(g, p), shape: [3, g.height, g.width] };
}

/** Per-item generators: seeded by (seed, item, how often the item was loaded), independent of load order. */
function itemRngs(seed: number) {
  const visits = new Map<number, number>();
  return (index: number) => {
    const v = visits.get(index) ?? 0;
    visits.set(index, v + 1);
    return new Rng((seed * 0x9e3779b1 + index * 0x85ebca6b + v * 0xc2b2ae35) >>> 0);
  };
}

export function classificationLoader(examples: readonly ClassificationExample[], opts: ImagePipelineOptions & LoaderOptions): PrefetchLoader<[ClassificationExample, number], Pixels, Batch> {
  const rngFor = itemRngs(opts.seed ?? 0);
  return new PrefetchLoader(
    examples.map((e, i) => [e, i] as [ClassificationExample, number]),
    ([e, i]) => loadPixels(e.image, e.source, opts, opts.augment ? rngFor(i) : undefined),
    (pixels, items) => ({ pixel_values: collatePixels(pixels), labels: collateLabels(items.map(([e]) => e.labels)) }),
    opts,
  );
}

export function vlmLoader(
  examples: readonly ConversationExample[], builder: VlmExampleBuilder, opts: ImagePipelineOptions & LoaderOptions & { padId: number },
): PrefetchLoader<ConversationExample, { tokens: Awaited<ReturnType<VlmExampleBuilder['build']>>; pixels: Pixels | null }, Batch> {
  return new PrefetchLoader(
    examples,
    async (e) => ({
      tokens: await builder.build(e),
      pixels: e.image === undefined ? null : await loadPixels(e.image, e.source, opts),
    }),
    (loaded) => {
      const images = loaded.map((l) => l.pixels).filter((p): p is Pixels => p !== null);
      if (images.length > 0 && images.length !== loaded.length) throw new Error('vlmLoader: a batch mixes examples with and without images; keep them in separate datasets');
      const batch = collateTokens(loaded.map((l) => l.tokens), opts.padId);
      if (images.length > 0) batch['pixel_values'] = collatePixels(images);
      return batch;
    },
    opts,
  );
}
