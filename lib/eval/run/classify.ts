// Scores from an image classifier (ViT in HF or timm / MAE layout) on a multi-label chest X-ray
// set: sigmoid of the logits, one probability per label, in the dataset's label order, as the
// LoRA paper's (and MAE / MRM fine-tuning's) evaluation computes AUROC from them.
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { classificationLoader } from '../../data/pipelines.ts';
import { loadPreprocessor, preprocessorFromConfig, type ImagePreprocessor } from '../../data/image/preprocess.ts';
import type { ClassificationExample } from '../../data/types.ts';
import type { Model } from '../../models/model.ts';
import { noGrad } from '../../torch/autograd.ts';
import { tidy } from '../../torch/scope.ts';

export interface ScorePrediction {
  id: string;
  scores: number[];
}

/**
 * The classifier's preprocessing: preprocessor_config.json in the model directory (or beside a
 * weights file); without one, HF ViTs get ViTImageProcessor's defaults at the model's size and
 * timm / MAE ViTs MAE's evaluation transform (bicubic resize of the short side to size / 0.875,
 * centre crop, ImageNet mean and std: main_finetune.py's build_transform(is_train=False)).
 */
export function classifierPreprocessor(model: Model, modelPath: string, file?: string | null): ImagePreprocessor {
  if (file) return loadPreprocessor(file);
  if (model.spec.family !== 'vit') throw new Error(`${modelPath}: a ${model.architecture} model is not an image classifier`);
  const dir = statSync(modelPath).isDirectory() ? modelPath : dirname(modelPath);
  if (existsSync(join(dir, 'preprocessor_config.json'))) return loadPreprocessor(dir);
  const size = model.spec.imageSize;
  if (model.spec.layout === 'hf') return preprocessorFromConfig({ image_processor_type: 'ViTImageProcessor', size: { height: size, width: size } });
  return preprocessorFromConfig({
    image_processor_type: 'MAE eval transform', size: { shortest_edge: Math.floor(size / 0.875) }, resample: 3,
    do_center_crop: true, crop_size: { height: size, width: size },
    image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225],
  }, 'MAE evaluation transform');
}

export interface ClassifyOptions {
  imageRoot: string;
  preprocessor: ImagePreprocessor;
  labelNames: readonly string[];
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export async function scoreClassifier(model: Model, examples: readonly ClassificationExample[], opts: ClassifyOptions): Promise<ScorePrediction[]> {
  if (model.spec.family !== 'vit') throw new Error(`a ${model.architecture} model does not classify images`);
  const numLabels = model.spec.numLabels;
  if (numLabels === 0) throw new Error(`the ${model.architecture} model has no classification head (pass --num-labels with the --adapter that trained one)`);
  if (numLabels !== opts.labelNames.length) {
    throw new Error(`the model has ${numLabels} labels but the dataset has ${opts.labelNames.length} (${opts.labelNames.join(', ')})`);
  }
  const loader = classificationLoader(examples, { imageRoot: opts.imageRoot, preprocessor: opts.preprocessor, batchSize: opts.batchSize ?? 32, shuffle: false });
  const out: ScorePrediction[] = [];
  model.eval();
  for await (const batch of loader.epoch(0)) {
    const pixels = batch['pixel_values']!;
    const placed = pixels.device === model.device && pixels.dtype === model.dtype ? pixels : pixels.to({ device: model.device, dtype: model.dtype });
    try {
      const result = await model.forward({ pixel_values: placed }, { grad: false });
      // tidy: the float / device copies are freed, only the numbers leave
      const values = tidy(() => noGrad(() => result['logits']!.float().sigmoid().to('cpu').toTypedArray() as Float32Array));
      for (const t of Object.values(result)) t.dispose();
      const n = values.length / numLabels;
      for (let i = 0; i < n; i++) out.push({ id: examples[out.length]!.id, scores: Array.from(values.subarray(i * numLabels, (i + 1) * numLabels)) });
    } finally {
      if (placed !== pixels) placed.dispose();
      for (const t of Object.values(batch)) t.dispose();
    }
    opts.onProgress?.(out.length, examples.length);
  }
  return out;
}
