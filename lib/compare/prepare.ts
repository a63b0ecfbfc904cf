// Before either side trains: the model with the method applied, its trainable weights written
// (the initial state both sides load), and the run's batches materialised in the trainer's order.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadModel } from '../models/load.ts';
import { HfNames } from '../peft/hf-names.ts';
import type { Device } from '../torch/device.ts';
import type { TaskName, TrainConfig, TrainDType } from '../train/config.ts';
import { openTrainingData } from '../train/data-source.ts';
import { stepsPerEpoch } from '../train/data-order.ts';
import { applyTuningMethod, type MethodOptions } from '../train/method.ts';
import { exportBatches, type ExportedBatches } from './batches.ts';
import type { InitWeights } from './python-side.ts';

/** transformers model types the PyTorch side (scripts/python/compare_reference.py) trains. */
export const COMPARED_MODEL_TYPES = ['llava', 'vit'];

export interface PrepareOptions {
  model: string;
  data: string;
  images: string | null;
  task: TaskName | null;
  tokenizer: string | null;
  split: string | null;
  arch: string | null;
  numLabels: number | null;
  dtype: TrainDType;
  device: Device;
  method: MethodOptions;
  config: TrainConfig;
}

export interface Prepared {
  init: InitWeights;
  /** The directory medtune restores the initial weights from. */
  initDir: string;
  batches: ExportedBatches;
  /** The config both sides run: steps fixed to the compared step count. */
  config: TrainConfig;
  modelType: string;
  architecture: string;
  trainable: { count: number; total: number };
  /** The trainable-parameter report medtune prints before step 1. */
  report: string;
}

export async function prepareCompare(opts: PrepareOptions, dirs: { init: string; batches: string }): Promise<Prepared> {
  if (!existsSync(opts.model)) throw new Error(`${opts.model}: no such model directory or file`);
  if (!statSync(opts.model).isDirectory()) {
    // The PyTorch side loads with from_pretrained: it needs a transformers model directory.
    throw new Error(`${opts.model}: compare needs a Hugging Face model directory (config.json + safetensors) that transformers loads too; convert a weights file first (medtune convert)`);
  }
  const configFile = join(opts.model, 'config.json');
  const modelType = existsSync(configFile) ? (JSON.parse(readFileSync(configFile, 'utf8')) as { model_type?: unknown }).model_type : undefined;
  if (typeof modelType !== 'string' || !COMPARED_MODEL_TYPES.includes(modelType)) {
    throw new Error(`${opts.model}: compare runs llava-hf LLaVA and ViT classifiers (config.json model_type ${COMPARED_MODEL_TYPES.join(' or ')}), ` +
      `the families its PyTorch side loads; this one is ${typeof modelType === 'string' ? `'${modelType}'` : 'of no model_type'}`);
  }
  const model = await loadModel(opts.model, {
    dtype: opts.dtype, device: opts.device, seed: opts.config.seed,
    ...(opts.arch ? { config: opts.arch } : {}), ...(opts.numLabels ? { numLabels: opts.numLabels } : {}),
  });
  try {
    const tuning = await applyTuningMethod(model, { ...opts.method, seed: opts.config.seed, baseModel: resolve(opts.model) });
    const files = await tuning.weights.save(model, dirs.init);
    const params = model.parameters();
    let init: InitWeights;
    if (files.includes('adapter_config.json')) {
      init = { kind: 'adapter', dir: dirs.init };
    } else {
      const hf = new HfNames(model, params.filter((p) => p.persistent).map((p) => p.name));
      init = {
        kind: 'tensors', file: join(dirs.init, files[0]!),
        names: Object.fromEntries(params.filter((p) => p.requiresGrad).map((p) => [p.name, hf.toTransformers5(p.name)])),
      };
    }
    const { total, trainable } = model.parameterCount();
    const source = { model, modelPath: opts.model, images: opts.images, task: opts.task, tokenizer: opts.tokenizer, split: opts.split };
    const data = await openTrainingData(opts.data, source);
    try {
      const c = opts.config;
      const perEpoch = stepsPerEpoch(data.size, c.batchSize, c.gradAccum, c.dropLast);
      if (perEpoch === 0) throw new Error(`the training set has ${data.size} examples, fewer than one batch of ${c.batchSize} (with drop-last)`);
      const steps = c.steps ?? c.epochs! * perEpoch;
      const batches = await exportBatches(data, c, steps, dirs.batches);
      return {
        init, initDir: dirs.init, batches, config: { ...c, steps, epochs: null },
        modelType, architecture: model.architecture, trainable: { count: trainable, total }, report: tuning.report(model),
      };
    } finally {
      data.dispose?.();
    }
  } finally {
    model.dispose();
  }
}
