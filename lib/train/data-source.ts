// Opening the training data named on the command line. This is the seam to the data layer
// (lib/data: dataset formats, images, chat templates, collation): until it is merged, the
// trainer reads pre-processed tensor files (.safetensors, see TensorFileDataset).
import { extname } from 'node:path';
import { existsSync } from 'node:fs';
import type { Model } from '../models/model.ts';
import type { TaskName } from './config.ts';
import { type LossScaling, TensorFileDataset, type TrainDataset } from './dataset.ts';

export interface DataSourceOptions {
  images?: string | null;
  task?: TaskName | null;
  model: Model;
}

export function lossScalingOf(task: TaskName): LossScaling {
  return task === 'classify' ? 'batches' : 'tokens';
}

export async function openTrainingData(file: string, opts: DataSourceOptions): Promise<TrainDataset> {
  if (!existsSync(file)) throw new Error(`${file}: no such file`);
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
