// Training data for BLIP-style models (the MISS recipe): VQA-RAD / SLAKE / PathVQA / conversation
// files become question-answer batches, R2Gen-style annotation.json files report batches, through
// lib/data's readers, BLIP's text preparation (blip-examples.ts) and image transform.
//
// Loss scaling under gradient accumulation follows the model's decoder loss: BLIP's VQA loss is
// a mean over questions ('batches': micro-batch losses are averaged over the window), a mean
// over tokens (transformers' loss, captions) is normalised by the window's token count ('tokens').
import { blipPreprocessor, blipReportLoader, blipVqaLoader } from '../data/blip-batches.ts';
import { readDataset, type DatasetFormat } from '../data/detect.ts';
import type { ImagePipelineOptions } from '../data/pipelines.ts';
import { BlipTextBuilder, type BlipTextOptions } from '../data/text/blip-examples.ts';
import { loadTokenizer } from '../data/text/tokenizer.ts';
import type { ConversationExample, ReportExample } from '../data/types.ts';
import type { Batch, Model } from '../models/model.ts';
import { imageRootFor } from './data-files.ts';
import { datasetFromLoader, LoaderBackedDataset, type LossScaling, type TrainDataset } from './dataset.ts';

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
}

export class BlipDataset extends LoaderBackedDataset {
  readonly lossScaling: LossScaling;
  protected readonly inner: TrainDataset;

  private constructor(
    readonly file: string,
    readonly task: 'vqa' | 'report',
    readonly examples: readonly (ConversationExample | ReportExample)[],
    readonly text: BlipTextBuilder,
    pipeline: ImagePipelineOptions,
    lossScaling: LossScaling,
    view: number,
  ) {
    super();
    this.lossScaling = lossScaling;
    const description = `${examples.length} ${task === 'vqa' ? 'questions' : 'reports'} from ${file}`;
    // The trainer chooses the indices; the loaders' batch size and order are not used.
    this.inner = task === 'vqa'
      ? datasetFromLoader(blipVqaLoader(examples as ConversationExample[], text, { ...pipeline, batchSize: 1 }), lossScaling, description)
      : datasetFromLoader(blipReportLoader(examples as ReportExample[], text, { ...pipeline, batchSize: 1, view }), lossScaling, description);
  }

  static open(file: string, model: Model, opts: BlipDataOptions): BlipDataset {
    if (model.spec.family !== 'blip') throw new Error(`BlipDataset: the model is ${model.architecture}, not a BLIP model`);
    const spec = model.spec;
    const data = readDataset(file, { ...(opts.format ? { format: opts.format } : {}), ...(opts.split ? { split: opts.split } : {}) });
    if (data.task === 'classify') throw new Error(`${file}: a classification dataset cannot train a BLIP model (VQA or report data is needed)`);
    const text = new BlipTextBuilder(loadTokenizer(opts.tokenizer), opts);
    if (text.ids.dec !== spec.bosTokenId) {
      throw new Error(`${opts.tokenizer}: the tokenizer's [DEC] is id ${text.ids.dec} but the model's BOS is ${spec.bosTokenId}; this is not the model's tokenizer`);
    }
    const pipeline: ImagePipelineOptions = {
      imageRoot: imageRootFor(file, opts.images),
      // BLIP's evaluation transform for training too: its RandomResizedCrop / flip / RandAugment
      // training augmentation is not reproduced here.
      preprocessor: blipPreprocessor(spec.vision.imageSize),
    };
    const scaling: LossScaling = data.task === 'vqa' && spec.decoderLoss === 'blip' ? 'batches' : 'tokens';
    return new BlipDataset(file, data.task, data.result.examples, text, pipeline, scaling, opts.view ?? 0);
  }
}
