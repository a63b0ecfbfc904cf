// Training data for LLaVA-family models (llava-hf and original LLaVA / LLaVA-Med layouts):
// conversation JSON, VQA-RAD, SLAKE and PathVQA files become {input_ids, attention_mask, labels,
// pixel_values} batches through lib/data: VlmExampleBuilder (prompt tokens -100, every assistant
// turn supervised, `<image>` as the model's image tokens), right padding with an attention mask,
// and the checkpoint's CLIP image preprocessing (llava-inputs.ts says which template, tokens and
// preprocessing). Token losses: the trainer normalises by the window's supervised tokens.
import { readDataset, type DatasetFormat } from '../data/detect.ts';
import { DataError, type SkippedRecord } from '../data/errors.ts';
import { vlmLoader } from '../data/pipelines.ts';
import { loadTokenizer, type TextTokenizer } from '../data/text/tokenizer.ts';
import { VlmExampleBuilder, type PromptFormat } from '../data/text/vlm-examples.ts';
import type { ConversationExample } from '../data/types.ts';
import type { Batch, Model } from '../models/model.ts';
import { checkImages, exampleError, imageRootFor, SKIP_BAD_HINT, skippedSummary } from './data-files.ts';
import { datasetFromLoader, LoaderBackedDataset, type LossScaling, type TrainDataset } from './dataset.ts';
import { type ConvTemplateChoice, llavaImageTokens, llavaPreprocessor, llavaPromptFormat, llavaSpecOf } from './llava-inputs.ts';

export interface VlmDataOptions {
  /** Tokenizer directory (usually the model's). */
  tokenizer: string;
  /** The model directory: its preprocessor_config.json (and an original checkpoint's tower folder). */
  modelDir?: string | null;
  /** Folder the dataset's image paths are relative to (default: the data file's images/, else its folder). */
  images?: string | null;
  format?: DatasetFormat;
  /** VQA-RAD 'train' / 'test' (phrase_type). */
  split?: string;
  /** The prompt format (default: see llava-inputs.ts). */
  convTemplate?: ConvTemplateChoice | null;
  /** Leave out malformed records and examples whose image is missing or does not decode, counted. */
  skipBad?: boolean;
  /** Where the skip count goes (default console.warn). */
  warn?: (line: string) => void;
}

/** The pad id the batches use: the tokenizer's pad token, else unk (LLaVA sets pad = unk), else the model's. */
function padIdOf(tokenizer: TextTokenizer, model: Model): number {
  return tokenizer.idOf('pad') ?? tokenizer.idOf('unk') ?? llavaSpecOf(model).padTokenId ?? 0;
}

export class VlmDataset extends LoaderBackedDataset {
  readonly lossScaling: LossScaling = 'tokens';
  protected readonly inner: TrainDataset;

  private constructor(
    readonly file: string,
    readonly examples: readonly ConversationExample[],
    readonly builder: VlmExampleBuilder,
    readonly format: PromptFormat,
    readonly skipped: readonly SkippedRecord[],
    inner: (description: string) => TrainDataset,
    preprocessorSource: string,
  ) {
    super();
    const prompt = format.kind === 'chat-template' ? 'chat template' : `conversation template ${format.template}`;
    const left = skipped.length ? `, ${skipped.length} skipped` : '';
    this.inner = inner(`${examples.length} conversations from ${file} (${prompt}; images: ${preprocessorSource}${left})`);
  }

  static async open(file: string, model: Model, opts: VlmDataOptions): Promise<VlmDataset> {
    const spec = llavaSpecOf(model);
    const data = readDataset(file, { ...(opts.format ? { format: opts.format } : {}), ...(opts.split ? { split: opts.split } : {}), skipBad: opts.skipBad ?? false });
    if (data.task !== 'vqa') {
      throw new Error(`${file}: ${data.task === 'report' ? 'report (annotation.json)' : 'classification'} data cannot train a LLaVA model here; ` +
        'LLaVA models read conversation JSON, VQA-RAD, SLAKE or PathVQA files (convert reports to conversation JSON)');
    }
    const tokenizer = loadTokenizer(opts.tokenizer);
    const format = llavaPromptFormat(model, tokenizer, opts.convTemplate ?? null);
    // llava-hf checkpoints are fed through their processor, which adds BOS when the template does not.
    const builder = new VlmExampleBuilder(tokenizer, format, llavaImageTokens(model, tokenizer), { processorSpecialTokens: spec.layout === 'hf' });
    const { preprocessor, source } = llavaPreprocessor(model, opts.modelDir ?? null);
    const imageRoot = imageRootFor(file, opts.images);
    const skipBad = opts.skipBad ?? false;
    const skipped: SkippedRecord[] = [...data.result.skipped];
    const checked = await checkImages(data.result.examples, imageRoot, { skipBad, decode: skipBad });
    skipped.push(...checked.skipped);
    let examples = checked.kept;
    if (skipBad) {
      // Examples the builder refuses (no assistant turn, turns a conversation template cannot take).
      const ok: ConversationExample[] = [];
      for (const e of examples) {
        try {
          await builder.build(e);
          ok.push(e);
        } catch (err) {
          if (!(err instanceof DataError)) throw err;
          skipped.push({ location: err.location, reason: `example '${e.id}': ${err.reason}`, message: exampleError(e, err.reason).message });
        }
      }
      examples = ok;
    }
    const summary = skippedSummary(skipped);
    if (summary) (opts.warn ?? console.warn)(summary);
    if (examples.length === 0) throw new Error(`${file}: no usable examples${summary ? ` (${summary})` : ''}`);
    const withImage = examples.filter((e) => e.image !== undefined).length;
    if (withImage !== 0 && withImage !== examples.length) {
      throw new Error(`${file}: ${examples.length - withImage} of ${examples.length} examples have no image; a LLaVA batch cannot mix them (keep text-only conversations in another file)`);
    }
    const loader = vlmLoader(examples, builder, { imageRoot, preprocessor, batchSize: 1, padId: padIdOf(tokenizer, model) });
    // A record that turns out bad while training (a corrupt image) names the example too.
    const loadItem = async (e: ConversationExample) => {
      try {
        return await loader.loadItem(e);
      } catch (err) {
        if (err instanceof DataError && !err.reason.startsWith('example ')) throw new DataError(err.location, `example '${e.id}': ${err.reason}${skipBad ? '' : SKIP_BAD_HINT}`);
        throw err;
      }
    };
    const perItem = { items: loader.items, loadItem, collate: loader.collate };
    return new VlmDataset(file, examples, builder, format, skipped, (d) => datasetFromLoader(perItem, 'tokens', d), source);
  }
}
