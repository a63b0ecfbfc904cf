// Training data for image classifiers (ViT, timm / MAE ViTs): NIH ChestX-ray14, CheXpert, RSNA
// Pneumonia and plain label CSVs become {pixel_values, labels} batches (multi-hot float labels,
// the model's multi-label BCE) through lib/data's classification loader. The dataset's label
// names must be the model's (config.json id2label, in order), or at least as many as its head
// has when the head's labels are unnamed; a mismatch would silently train the wrong outputs.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readDataset, type DatasetFormat } from '../data/detect.ts';
import { DataError, type SkippedRecord } from '../data/errors.ts';
import { loadPreprocessor, preprocessorFromConfig, type ImagePreprocessor } from '../data/image/preprocess.ts';
import { classificationLoader } from '../data/pipelines.ts';
import type { ClassificationExample } from '../data/types.ts';
import type { VitSpec } from '../models/families/vit.ts';
import type { Batch, Model } from '../models/model.ts';
import { checkImages, exampleError, imageRootFor, SKIP_BAD_HINT, skippedSummary } from './data-files.ts';
import { datasetFromLoader, LoaderBackedDataset, type LossScaling, type TrainDataset } from './dataset.ts';

export interface ClassificationDataOptions {
  modelDir?: string | null;
  images?: string | null;
  format?: DatasetFormat;
  /** Keep only (and order by) the images listed in this file (NIH train_val_list.txt, 1% / 10% lists). */
  splitList?: string;
  skipBad?: boolean;
  warn?: (line: string) => void;
}

function vitSpecOf(model: Model): VitSpec {
  if (model.spec.family !== 'vit') throw new Error(`the model is ${model.architecture}; classification data trains ViT classifiers`);
  return model.spec;
}

/** The head's label names in output order, or null when they are unnamed (LABEL_0 ..., a fresh head). */
export function modelLabelNames(model: Model): string[] | null {
  const id2label = model.config['id2label'];
  if (id2label && typeof id2label === 'object' && !Array.isArray(id2label)) {
    const entries = Object.entries(id2label as Record<string, unknown>).map(([k, v]) => [Number(k), String(v)] as const).sort((a, b) => a[0] - b[0]);
    const names = entries.map(([, v]) => v);
    return names.every((n, i) => n === `LABEL_${i}`) ? null : names;
  }
  const timm = model.config['label_names'];
  return Array.isArray(timm) ? timm.map(String) : null;
}

/** Throws unless the dataset's labels are the model's outputs, and the model's loss fits multi-hot labels. */
export function checkLabels(model: Model, labelNames: readonly string[], file: string): void {
  const spec = vitSpecOf(model);
  if (spec.numLabels === 0) throw new Error(`the model has no classification head; give --num-labels ${labelNames.length} (the labels of ${file}: ${labelNames.join(', ')})`);
  const names = modelLabelNames(model);
  if (names && names.join('\u0000') !== labelNames.join('\u0000')) {
    const sameSet = names.length === labelNames.length && [...names].sort().join('\u0000') === [...labelNames].sort().join('\u0000');
    throw new Error(`${file}: the dataset's labels ${sameSet ? 'are the model\'s in another order' : 'differ from the model\'s'}:\n` +
      `  dataset (${labelNames.length}): ${labelNames.join(', ')}\n  model id2label (${names.length}): ${names.join(', ')}`);
  }
  if (spec.numLabels !== labelNames.length) {
    throw new Error(`${file}: the dataset has ${labelNames.length} labels (${labelNames.join(', ')}) but the model's head has ${spec.numLabels} outputs; use --num-labels ${labelNames.length} for a fresh head`);
  }
  const loss = spec.problemType || (spec.numLabels === 1 ? 'regression' : 'multi_label_classification');
  if (loss !== 'multi_label_classification') {
    throw new Error(`the model's problem_type is ${spec.problemType || `unset with 1 label (${loss})`}, but ${file} holds multi-hot labels for a multi-label (BCE) loss; ` +
      'set "problem_type": "multi_label_classification" in its config.json');
  }
}

/** preprocessor_config.json when the model has one; else the family's own defaults at the model's size. */
function classifierPreprocessor(spec: VitSpec, modelDir: string | null): { preprocessor: ImagePreprocessor; source: string } {
  const file = modelDir ? join(modelDir, 'preprocessor_config.json') : null;
  let found: { preprocessor: ImagePreprocessor; source: string };
  if (file && existsSync(file)) found = { preprocessor: loadPreprocessor(file), source: file };
  else if (spec.layout === 'hf') {
    // ViTImageProcessor's defaults (mean/std 0.5, bilinear) at the model's size.
    found = { preprocessor: preprocessorFromConfig({ image_processor_type: 'ViTImageProcessor', size: { height: spec.imageSize, width: spec.imageSize } }), source: `ViTImageProcessor defaults at ${spec.imageSize} px` };
  } else {
    // timm / MAE fine-tuning's evaluation transform at the model's size: bicubic, ImageNet mean/std.
    found = {
      preprocessor: preprocessorFromConfig({
        image_processor_type: 'ViTImageProcessor', size: { height: spec.imageSize, width: spec.imageSize }, resample: 3,
        image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225],
      }),
      source: `bicubic resize to ${spec.imageSize} px, ImageNet mean/std (no preprocessor_config.json)`,
    };
  }
  const p = found.preprocessor;
  const out = p.doCenterCrop ? p.cropSize : 'shortestEdge' in p.size ? null : p.size;
  if (!out || out.height !== spec.imageSize || out.width !== spec.imageSize) {
    throw new Error(`${found.source}: makes ${out ? `${out.width}x${out.height}` : 'non-square'} images, but the model takes ${spec.imageSize}x${spec.imageSize}`);
  }
  return found;
}

export class ClassificationDataset extends LoaderBackedDataset {
  readonly lossScaling: LossScaling = 'batches';
  protected readonly inner: TrainDataset;

  private constructor(
    readonly file: string,
    readonly labelNames: readonly string[],
    readonly examples: readonly ClassificationExample[],
    readonly skipped: readonly SkippedRecord[],
    inner: (description: string) => TrainDataset,
    source: string,
  ) {
    super();
    const left = skipped.length ? `, ${skipped.length} skipped` : '';
    this.inner = inner(`${examples.length} images with ${labelNames.length} labels from ${file} (images: ${source}${left})`);
  }

  static async open(file: string, model: Model, opts: ClassificationDataOptions = {}): Promise<ClassificationDataset> {
    const spec = vitSpecOf(model);
    const skipBad = opts.skipBad ?? false;
    const data = readDataset(file, { ...(opts.format ? { format: opts.format } : {}), ...(opts.splitList ? { splitList: opts.splitList } : {}), skipBad });
    if (data.task !== 'classify') throw new Error(`${file}: ${data.task === 'vqa' ? 'VQA' : 'report'} data cannot train an image classifier (NIH, CheXpert, RSNA or label CSV files can)`);
    const labelNames = data.result.labelNames;
    checkLabels(model, labelNames, file);
    const unknown = data.result.examples.find((e) => e.labels.some((v) => Number.isNaN(v)));
    if (unknown) {
      throw exampleError(unknown, `unknown (NaN) labels cannot train with the model's BCE loss: ${labelNames.filter((_, i) => Number.isNaN(unknown.labels[i]!)).join(', ')} ` +
        '(CheXpert: read uncertain labels as ones or zeros)');
    }
    const { preprocessor, source } = classifierPreprocessor(spec, opts.modelDir ?? null);
    const imageRoot = imageRootFor(file, opts.images);
    const checked = await checkImages(data.result.examples, imageRoot, { skipBad, decode: skipBad });
    const skipped = [...data.result.skipped, ...checked.skipped];
    const summary = skippedSummary(skipped);
    if (summary) (opts.warn ?? console.warn)(summary);
    const examples = checked.kept;
    if (examples.length === 0) throw new Error(`${file}: no usable examples${summary ? ` (${summary})` : ''}`);
    const loader = classificationLoader(examples, { imageRoot, preprocessor, batchSize: 1 });
    const loadItem = async (item: (typeof loader.items)[number]) => {
      try {
        return await loader.loadItem(item);
      } catch (err) {
        if (err instanceof DataError) throw exampleError(item[0], `${err.reason}${skipBad ? '' : SKIP_BAD_HINT}`);
        throw err;
      }
    };
    const perItem = { items: loader.items, loadItem, collate: loader.collate };
    return new ClassificationDataset(file, labelNames, examples, skipped, (d) => datasetFromLoader(perItem, 'batches', d), source);
  }
}
