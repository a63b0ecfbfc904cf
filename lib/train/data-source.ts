// Opening the training data named on the command line: the seam between the trainer and the data
// layer (lib/data). Pre-processed tensor files (.safetensors) are read as they are; dataset files
// are detected (lib/data/detect.ts: CSV header, JSON fields) and prepared for the model's family:
//   BLIP             VQA-RAD / SLAKE / PathVQA / conversation JSON, annotation.json (blip-data.ts)
//   LLaVA            VQA-RAD / SLAKE / PathVQA / conversation JSON (vlm-data.ts)
//   ViT classifiers  NIH ChestX-ray14, CheXpert, RSNA, label CSV (classification-data.ts)
import { dirname, extname } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { detectFormat, TASK_OF_FORMAT, type DatasetFormat } from '../data/detect.ts';
import type { Model } from '../models/model.ts';
import { BlipDataset } from './blip-data.ts';
import { ClassificationDataset } from './classification-data.ts';
import type { TaskName } from './config.ts';
import { type LossScaling, TensorFileDataset, type TrainDataset } from './dataset.ts';
import type { ConvTemplateChoice } from './llava-inputs.ts';
import { VlmDataset } from './vlm-data.ts';

export interface DataSourceOptions {
  images?: string | null;
  task?: TaskName | null;
  model: Model;
  /** Where the model came from (its tokenizer and preprocessor_config.json are looked for there). */
  modelPath?: string | null;
  /** A tokenizer directory, when the model's own is elsewhere (a .pth has none). */
  tokenizer?: string | null;
  /** Dataset split for files that hold several (VQA-RAD's phrase_type, annotation.json's splits), or a classification split list file. */
  split?: string | null;
  /** The dataset format, when detection from the file is not wanted. */
  format?: DatasetFormat | null;
  /** LLaVA: the prompt format ('chat' = the tokenizer's chat template, or a LLaVA-Med conversation template). */
  convTemplate?: ConvTemplateChoice | null;
  /** Leave out malformed records and examples with a missing or undecodable image (counted and reported). */
  skipBad?: boolean;
  /** Warnings (the --skip-bad count); default console.warn. */
  warn?: (line: string) => void;
}

/** The model's own directory (a weights file's folder). */
function modelDirOf(opts: DataSourceOptions): string | null {
  if (!opts.modelPath) return null;
  return statSync(opts.modelPath).isDirectory() ? opts.modelPath : dirname(opts.modelPath);
}

function tokenizerDir(opts: DataSourceOptions): string {
  if (opts.tokenizer) return opts.tokenizer;
  const dir = modelDirOf(opts);
  if (!dir) throw new Error('the model needs a tokenizer directory (--tokenizer)');
  return dir;
}

export function lossScalingOf(task: TaskName): LossScaling {
  return task === 'classify' ? 'batches' : 'tokens';
}

const TASK_WORDS: Record<TaskName, string> = { vqa: 'VQA', report: 'report', classify: 'classification' };

export async function openTrainingData(file: string, opts: DataSourceOptions): Promise<TrainDataset> {
  if (!existsSync(file)) throw new Error(`${file}: no such file`);
  if (extname(file).toLowerCase() === '.safetensors') {
    const data = await TensorFileDataset.open(file);
    if (opts.task && lossScalingOf(opts.task) !== data.lossScaling) {
      data.dispose();
      throw new Error(`${file}: --task ${opts.task} needs ${lossScalingOf(opts.task)} loss scaling, but the file holds ${data.lossScaling === 'tokens' ? 'token' : 'per-example'} data`);
    }
    return data;
  }
  const format = opts.format ?? detectFormat(file);
  const task = TASK_OF_FORMAT[format];
  if (opts.task && opts.task !== task) throw new Error(`${file}: --task ${opts.task}, but the file holds ${TASK_WORDS[task]} data (${format})`);
  const common = { ...(opts.images ? { images: opts.images } : {}), format, skipBad: opts.skipBad ?? false, ...(opts.warn ? { warn: opts.warn } : {}) };
  const family = opts.model.family;
  // BLIP-style models read VQA and report files, tokenized and transformed as Salesforce BLIP does.
  if (family === 'blip') {
    if (opts.skipBad) throw new Error('--skip-bad is not supported for BLIP models yet; fix or remove the bad records');
    return BlipDataset.open(file, opts.model, { tokenizer: tokenizerDir(opts), format, ...(opts.images ? { images: opts.images } : {}), ...(opts.split ? { split: opts.split } : {}) });
  }
  if (family === 'llava') {
    return VlmDataset.open(file, opts.model, {
      ...common, tokenizer: tokenizerDir(opts), modelDir: modelDirOf(opts), convTemplate: opts.convTemplate ?? null, ...(opts.split ? { split: opts.split } : {}),
    });
  }
  if (family === 'vit') {
    // Classification splits are image lists (NIH's train_val_list.txt, 1% / 10% subsets).
    if (opts.split && !existsSync(opts.split)) throw new Error(`--split ${opts.split}: for ${format} files the split is a list file of image names, and there is no such file`);
    return ClassificationDataset.open(file, opts.model, { ...common, modelDir: modelDirOf(opts), ...(opts.split ? { splitList: opts.split } : {}) });
  }
  throw new Error(`${file}: ${opts.model.architecture} models train on pre-processed tensor files (.safetensors) only; dataset files train LLaVA, BLIP and ViT models`);
}
