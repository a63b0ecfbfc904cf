// Training data for BLIP-style models (the MISS recipe): VQA-RAD / SLAKE / PathVQA / conversation
// files become question-answer batches, R2Gen-style annotation.json files report batches, through
// lib/data's readers, BLIP's text preparation (blip-examples.ts) and image transform.
//
// Loss scaling under gradient accumulation follows the model's decoder loss: BLIP's VQA loss is
// a mean over questions ('batches': micro-batch losses are averaged over the window), a mean
// over tokens (transformers' loss, captions) is normalised by the window's token count ('tokens').
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { blipPreprocessor, collateBlipCaptions, collateBlipVqa } from '../data/blip-batches.ts';
import { collatePixels } from '../data/collate.ts';
import { readDataset, type DatasetFormat } from '../data/detect.ts';
import type { AugmentOptions } from '../data/image/augment.ts';
import { loadPixels, type ImagePipelineOptions } from '../data/pipelines.ts';
import { BlipTextBuilder, type BlipTextOptions } from '../data/text/blip-examples.ts';
import { loadTokenizer } from '../data/text/tokenizer.ts';
import type { ConversationExample, ReportExample } from '../data/types.ts';
import type { BlipSpec } from '../models/families/blip.ts';
import type { Batch, Model } from '../models/model.ts';
import type { LossScaling, TrainDataset } from './dataset.ts';

export interface BlipDataOptions extends BlipTextOptions {
  /** Folder the dataset's image paths are relative to (default: the data file's folder, then its images/). */
  images?: string | null;
  /** Tokenizer directory: a BERT tokenizer (tokenizer.json); the model directory usually has it. */
  tokenizer: string;
  format?: DatasetFormat;
  /** VQA-RAD / annotation.json split ('train', 'test', 'val'). */
  split?: string;
  /** Report studies: which view (default 0, the first). */
  view?: number;
  /** Off unless given (BLIP trains with RandomResizedCrop(0.5, 1) + flip + RandAugment; RandAugment is not here). */
  augment?: AugmentOptions;
  seed?: number;
}

function imageRootFor(file: string, images: string | null | undefined): string {
  if (images) return images;
  const beside = join(dirname(file), 'images');
  return existsSync(beside) ? beside : dirname(file);
}

export class BlipDataset implements TrainDataset {
  readonly lossScaling: LossScaling;
  private readonly cache = new Map<number, { ids: number[]; labels?: number[]; question?: number[] }>();

  private constructor(
    readonly file: string,
    readonly task: 'vqa' | 'report',
    readonly examples: readonly (ConversationExample | ReportExample)[],
    readonly text: BlipTextBuilder,
    private readonly pipeline: ImagePipelineOptions,
    spec: BlipSpec,
    private readonly view: number,
  ) {
    this.lossScaling = task === 'vqa' && spec.decoderLoss === 'blip' ? 'batches' : 'tokens';
  }

  static open(file: string, model: Model, opts: BlipDataOptions): BlipDataset {
    if (model.spec.family !== 'blip') throw new Error(`BlipDataset: the model is ${model.architecture}, not a BLIP model`);
    const spec = model.spec;
    const data = readDataset(file, { ...(opts.format ? { format: opts.format } : {}), ...(opts.split ? { split: opts.split } : {}) });
    if (data.task === 'classify') throw new Error(`${file}: a classification dataset cannot train a BLIP model (VQA or report data is needed)`);
    const tokenizerDir = opts.tokenizer;
    const text = new BlipTextBuilder(loadTokenizer(tokenizerDir), opts);
    if (text.ids.dec !== spec.bosTokenId) {
      throw new Error(`${tokenizerDir}: the tokenizer's [DEC] is id ${text.ids.dec} but the model's BOS is ${spec.bosTokenId}; this is not the model's tokenizer`);
    }
    const pipeline: ImagePipelineOptions = {
      imageRoot: imageRootFor(file, opts.images),
      preprocessor: blipPreprocessor(spec.vision.imageSize),
      ...(opts.augment ? { augment: opts.augment } : {}),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    };
    return new BlipDataset(file, data.task, data.result.examples, text, pipeline, spec, opts.view ?? 0);
  }

  get size(): number {
    return this.examples.length;
  }

  private async tokens(i: number) {
    let t = this.cache.get(i);
    if (!t) {
      if (this.task === 'vqa') {
        const v = await this.text.vqa(this.examples[i] as ConversationExample);
        t = { ids: v.answer, question: v.question };
      } else {
        const c = await this.text.report(this.examples[i] as ReportExample);
        t = { ids: c.ids, labels: c.labels };
      }
      this.cache.set(i, t);
    }
    return t;
  }

  private imageOf(i: number): { image: string; source: { file: string; line: number } } {
    const e = this.examples[i]!;
    const image = 'images' in e ? e.images[this.view] : e.image;
    if (image === undefined) throw new Error(`${e.source.file}, line ${e.source.line}: example '${e.id}' has no image${'images' in e ? ` (view ${this.view})` : ''}`);
    return { image, source: e.source };
  }

  async batch(indices: readonly number[]): Promise<Batch> {
    const tokens = await Promise.all(indices.map((i) => this.tokens(i)));
    const pixels = await Promise.all(indices.map((i) => {
      const { image, source } = this.imageOf(i);
      return loadPixels(image, source, this.pipeline);
    }));
    const pad = this.text.ids.pad;
    const text = this.task === 'vqa'
      ? collateBlipVqa(tokens.map((t) => ({ question: t.question!, answer: t.ids })), pad)
      : collateBlipCaptions(tokens.map((t) => ({ ids: t.ids, labels: t.labels! })), pad);
    return { ...text, pixel_values: collatePixels(pixels) };
  }

  describe(): string {
    return `${this.examples.length} ${this.task === 'vqa' ? 'questions' : 'reports'} from ${this.file}`;
  }
}
