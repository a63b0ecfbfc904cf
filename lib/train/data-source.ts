// Opening the training data named on the command line. This is the seam to the data layer
// (lib/data: dataset formats, images, chat templates, collation): until it is merged, the
// trainer reads pre-processed tensor files (.safetensors, see TensorFileDataset).
import { dirname, extname } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import type { Model } from '../models/model.ts';
import { BlipDataset } from './blip-data.ts';
import type { TaskName } from './config.ts';
import { type LossScaling, TensorFileDataset, type TrainDataset } from './dataset.ts';

export interface DataSourceOptions {
  images?: string | null;
  task?: TaskName | null;
  model: Model;
  /** Where the model came from (its tokenizer is looked for there). */
  modelPath?: string | null;
  /** A tokenizer directory, when the model's own is elsewhere (a .pth has none). */
  tokenizer?: string | null;
  /** Dataset split for files that hold several (VQA-RAD's phrase_type, annotation.json's splits). */
  split?: string | null;
}

function tokenizerDir(opts: DataSourceOptions): string {
  if (opts.tokenizer) return opts.tokenizer;
  if (!opts.modelPath) throw new Error('the model needs a tokenizer directory (--tokenizer)');
  return statSync(opts.modelPath).isDirectory() ? opts.modelPath : dirname(opts.modelPath);
}

export function lossScalingOf(task: TaskName): LossScaling {
  return task === 'classify' ? 'batches' : 'tokens';
}

export async function openTrainingData(file: string, opts: DataSourceOptions): Promise<TrainDataset> {
  if (!existsSync(file)) throw new Error(`${file}: no such file`);
  // BLIP-style models read VQA (VQA-RAD, SLAKE, PathVQA, conversation JSON) and report
  // (annotation.json) files directly, tokenized and transformed as Salesforce BLIP does.
  if (opts.model.family === 'blip' && extname(file).toLowerCase() !== '.safetensors') {
    const data = BlipDataset.open(file, opts.model, { tokenizer: tokenizerDir(opts), ...(opts.images ? { images: opts.images } : {}), ...(opts.split ? { split: opts.split } : {}) });
    if (opts.task && opts.task !== data.task) throw new Error(`${file}: --task ${opts.task}, but the file holds ${data.task === 'vqa' ? 'VQA' : 'report'} data`);
    return data;
  }
  if (extname(file).toLowerCase() !== '.safetensors') {
    throw new Error(`${file}: this build reads pre-processed tensor files (.safetensors with pixel_values/input_ids/labels ...); ` +
      'dataset formats (conversation JSON, VQA-RAD, SLAKE, PathVQA, NIH/CheXpert CSV) come with the data layer');
  }
  const data = await TensorFileDataset.open(file);
  if (opts.task && lossScalingOf(opts.task) !== data.lossScaling) {
    data.dispose();
    throw new Error(`${file}: --task ${opts.task} needs ${lossScalingOf(opts.task)} loss scaling, but the file holds ${data.lossScaling === 'tokens' ? 'token' : 'per-example'} data`);
  }
  return data;
}
