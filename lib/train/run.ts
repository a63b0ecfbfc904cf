// A whole fine-tuning run from paths and settings, as `medtune train` and `npm start` describe
// it: load the model, apply the tuning method, open the data, train, save.
import { resolve } from 'node:path';
import type { Device } from '../torch/device.ts';
import { loadModel, type ModelDType } from '../models/load.ts';
import { resolveTrainConfig, type TaskName, type TrainConfig } from './config.ts';
import type { DatasetFormat } from '../data/detect.ts';
import { openTrainingData } from './data-source.ts';
import type { ConvTemplateChoice } from './llava-inputs.ts';
import { applyTuningMethod, type MethodOptions } from './method.ts';
import type { ProgressSink } from './progress.ts';
import { listCheckpoints } from './checkpoint.ts';
import { train, type TrainResult } from './trainer.ts';

export interface FineTuneOptions {
  model: string;
  data: string;
  evalData?: string | null;
  images?: string | null;
  task?: TaskName | null;
  method: MethodOptions;
  /** The architecture of a weights file (.pth): a preset name or a config.json (see lib/models/presets.ts). */
  arch?: string | null;
  /** A classifier with this many labels (MAE / MRM backbones get a fresh head). */
  numLabels?: number | null;
  /** Tokenizer directory for text data when the model's own directory has none. */
  tokenizer?: string | null;
  /** Dataset split of --data (VQA-RAD 'train' / 'test', annotation.json 'train' / 'val' / 'test'); --eval-data uses evalSplit. */
  split?: string | null;
  evalSplit?: string | null;
  /** Dataset format of --data / --eval-data, when detection from the file is not wanted. */
  format?: DatasetFormat | null;
  /** LLaVA prompt format: 'chat' (the tokenizer's chat template) or a LLaVA-Med conversation template. */
  convTemplate?: ConvTemplateChoice | null;
  /** Leave out malformed records and examples with missing or undecodable images (counted, reported). */
  skipBad?: boolean;
  dtype?: ModelDType;
  device?: Device;
  /** A checkpoint-<step> directory, or 'latest' (the newest under the output directory). */
  resume?: string | null;
  config: Partial<TrainConfig> & { out: string };
  progress?: ProgressSink;
  print?: (line: string) => void;
}

export async function fineTune(opts: FineTuneOptions): Promise<TrainResult> {
  const config = resolveTrainConfig(opts.config);
  let resumeFrom = opts.resume ?? null;
  if (resumeFrom === 'latest') {
    const latest = listCheckpoints(config.out).at(-1);
    if (!latest) throw new Error(`--resume latest: no checkpoint-<step> directory in ${config.out}`);
    resumeFrom = latest.dir;
  }
  const model = await loadModel(opts.model, {
    dtype: opts.dtype ?? 'fp32', device: opts.device ?? 'cpu', seed: config.seed,
    ...(opts.arch ? { config: opts.arch } : {}),
    // A head sized here is trained on the readers' multi-hot labels: a multi-label (BCE) head
    // (a 1-label head would otherwise be transformers' regression).
    ...(opts.numLabels ? { numLabels: opts.numLabels, configOverrides: { problem_type: 'multi_label_classification' } } : {}),
  });
  try {
    const tuning = await applyTuningMethod(model, { ...opts.method, seed: config.seed, baseModel: resolve(opts.model) });
    const print = opts.print ?? ((line: string) => console.log(line));
    const source = {
      model, modelPath: opts.model, images: opts.images ?? null, task: opts.task ?? null, tokenizer: opts.tokenizer ?? null,
      format: opts.format ?? null, convTemplate: opts.convTemplate ?? null, skipBad: opts.skipBad ?? false, warn: print,
    };
    const data = await openTrainingData(opts.data, { ...source, split: opts.split ?? null });
    const evalData = opts.evalData ? await openTrainingData(opts.evalData, { ...source, split: opts.evalSplit ?? null }) : null;
    try {
      return await train({
        model, train: data, eval: evalData, config, weights: tuning.weights, resumeFrom,
        parameterReport: tuning.report,
        ...(opts.progress ? { progress: opts.progress } : {}),
        ...(opts.print ? { print: opts.print } : {}),
        describe: {
          model: resolve(opts.model), data: resolve(opts.data), eval_data: opts.evalData ? resolve(opts.evalData) : null, images: opts.images ?? null,
          task: opts.task ?? null, format: opts.format ?? null, conv_template: opts.convTemplate ?? null, skip_bad: opts.skipBad ?? false, arch: opts.arch ?? null, num_labels: opts.numLabels ?? null, split: opts.split ?? null, dtype: opts.dtype ?? 'fp32', device: opts.device ?? 'cpu', resumed_from: resumeFrom, ...tuning.describe,
        },
      });
    } finally {
      data.dispose?.();
      evalData?.dispose?.();
    }
  } finally {
    model.dispose();
  }
}
