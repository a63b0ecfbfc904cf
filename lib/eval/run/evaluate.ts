// A whole evaluation from paths: load the model (and its adapter), read the test set, run the
// model (LLaVA: greedy answers; BLIP: MISS's beam search; ViT: sigmoid scores), write the
// predictions file in the format `medtune score` reads (JSON Lines keyed by the dataset's ids)
// and score it with the same function `medtune score` uses, so both report the same numbers.
//
// Runners sit above lib/eval's metrics, lib/models, lib/peft (adapters) and lib/data; BLIP data
// comes through lib/train's BlipDataset (BLIP's text and image preparation, shared with training).
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { readDataset, type AnyDataset, type DatasetReadOptions, type TaskKind } from '../../data/detect.ts';
import type { ConversationExample } from '../../data/types.ts';
import { writeFileAtomicSync } from '../../io/atomic-write.ts';
import type { ModelDType } from '../../models/load.ts';
import type { Device } from '../../torch/device.ts';
import { BlipDataset } from '../../train/blip-data.ts';
import { writePredictions } from '../predictions.ts';
import { scoreDataset, type ScoreResult } from '../score.ts';
import type { VqaAccuracy } from '../vqa-accuracy.ts';
import { evaluateBlip } from './blip.ts';
import { classifierPreprocessor, scoreClassifier, type ScorePrediction } from './classify.ts';
import { generateLlava, llavaSetup, type PromptStyle, type TextPrediction } from './llava.ts';
import { loadEvalModel } from './load.ts';

export const PREDICTIONS_FILE = 'predictions.jsonl';
export const METRICS_FILE = 'metrics.json';
/** The instruction a LLaVA model gets for report datasets, which hold no question. */
export const DEFAULT_REPORT_PROMPT = 'Describe the findings of this chest X-ray.';

export interface EvaluateOptions extends DatasetReadOptions {
  model: string;
  arch?: string | null;
  numLabels?: number | null;
  adapter?: string | null;
  /** Tokenizer directory when the model's has none (BLIP .pth files). */
  tokenizer?: string | null;
  data: string;
  /** Image folder (default: `images/` beside the data file if present, else the data file's folder). */
  images?: string | null;
  task?: TaskKind | null;
  batchSize?: number;
  /** LLaVA: new tokens at most (default 1024). BLIP: replaces MISS's total length of 10. */
  maxNewTokens?: number | null;
  /** BLIP: beams (default 3, MISS). */
  numBeams?: number | null;
  /** LLaVA prompt format (default: chat template for llava-hf, LLaVA-Med's template for the original layout). */
  prompt?: PromptStyle | null;
  /** LLaVA on report data: the instruction (default DEFAULT_REPORT_PROMPT). */
  reportPrompt?: string | null;
  /** ViT: a preprocessor_config.json to use instead of the model's. */
  preprocessor?: string | null;
  dtype?: ModelDType;
  device?: Device;
  /** Where predictions.jsonl and metrics.json go (null: written nowhere). */
  out?: string | null;
  onProgress?: (done: number, total: number) => void;
  /** Lines worth telling the user (what was loaded), e.g. to stderr. */
  log?: (line: string) => void;
}

export interface EvaluateResult {
  task: TaskKind;
  model: string;
  adapter: string | null;
  data: string;
  /** The predictions, in dataset order, as written to the predictions file. */
  predictions: (TextPrediction | ScorePrediction)[];
  predictionsFile: string | null;
  /** What `medtune score --pred <predictionsFile> --ref <data>` computes. */
  metrics: ScoreResult;
  /** BLIP VQA: MISS's exact-match accuracy (closed / open / overall). */
  miss?: VqaAccuracy;
}

const FAMILY_TASKS: Record<string, readonly TaskKind[]> = { llava: ['vqa', 'report'], blip: ['vqa', 'report'], vit: ['classify'] };

function imageRoot(data: string, images: string | null | undefined): string {
  if (images) {
    if (!existsSync(images) || !statSync(images).isDirectory()) throw new Error(`--images ${images}: no such directory`);
    return images;
  }
  const beside = join(dirname(data), 'images');
  return existsSync(beside) ? beside : dirname(data);
}

/** The first question of a conversation (what scoring compares against), as the prompt. */
function firstQuestion(e: ConversationExample): ConversationExample {
  const k = e.conversations.findIndex((t) => t.from === 'human');
  return { ...e, conversations: e.conversations.slice(0, k + 1) };
}

function conversationsOf(ds: AnyDataset, reportPrompt: string): ConversationExample[] {
  if (ds.task === 'vqa') return ds.result.examples.map(firstQuestion);
  if (ds.task === 'report') {
    return ds.result.examples.map((e) => ({
      id: e.id, ...(e.images[0] !== undefined ? { image: e.images[0] } : {}), source: e.source,
      conversations: [{ from: 'human' as const, value: `<image>\n${reportPrompt}` }],
    }));
  }
  throw new Error('conversationsOf: a classification dataset has no questions');
}

/**
 * The result as one JSON object (`medtune eval --json`, metrics.json): `metrics` is exactly what
 * `medtune score --json` prints for the predictions file.
 */
export function evaluationJson(r: EvaluateResult): Record<string, unknown> {
  return {
    task: r.task, model: r.model, adapter: r.adapter, data: r.data, count: r.predictions.length, predictions: r.predictionsFile,
    metrics: { task: r.metrics.task, skipped: r.metrics.skipped, ...r.metrics.scores },
    ...(r.miss ? { miss: r.miss } : {}),
  };
}

export async function evaluate(opts: EvaluateOptions): Promise<EvaluateResult> {
  if (!existsSync(opts.data)) throw new Error(`${opts.data}: no such data file`);
  const readOpts: DatasetReadOptions = {
    ...(opts.format ? { format: opts.format } : {}), ...(opts.split ? { split: opts.split } : {}), ...(opts.section ? { section: opts.section } : {}),
    ...(opts.uncertain ? { uncertain: opts.uncertain } : {}), ...(opts.splitList ? { splitList: opts.splitList } : {}),
    ...(opts.languages ? { languages: opts.languages } : {}), skipBad: opts.skipBad ?? false,
  };
  const ds = readDataset(opts.data, readOpts);
  if (opts.task && opts.task !== ds.task) throw new Error(`--task ${opts.task} does not fit ${opts.data}, which reads as ${ds.format} (a ${ds.task} dataset)`);
  if (ds.result.examples.length === 0) throw new Error(`${opts.data}: no examples${opts.split ? ` in split '${opts.split}'` : ''}`);
  const root = imageRoot(opts.data, opts.images);
  const loaded = await loadEvalModel({
    model: opts.model, ...(opts.arch ? { arch: opts.arch } : {}), ...(opts.adapter ? { adapter: opts.adapter } : {}),
    ...(opts.numLabels ? { numLabels: opts.numLabels } : ds.task === 'classify' && !statSync(opts.model).isDirectory() ? { numLabels: ds.result.labelNames.length } : {}),
    ...(opts.dtype ? { dtype: opts.dtype } : {}), ...(opts.device ? { device: opts.device } : {}),
  });
  const { model } = loaded;
  try {
    const family = model.spec.family;
    const tasks = FAMILY_TASKS[family] ?? [];
    if (!tasks.includes(ds.task)) {
      const what = { vqa: 'VQA questions', report: 'reports', classify: 'image labels' }[ds.task];
      throw new Error(`${opts.data} is a ${ds.task} dataset (${ds.format}), but ${opts.model} is a ${model.architecture}, which ${tasks.length ? `does ${tasks.join(' / ')}` : 'is not evaluated here'}, not ${what}`);
    }
    opts.log?.(`model: ${loaded.description}`);
    opts.log?.(`data: ${ds.result.examples.length} ${ds.task === 'classify' ? 'images' : ds.task === 'vqa' ? 'questions' : 'reports'} from ${opts.data}${opts.split ? ` (${opts.split})` : ''}, images in ${root}`);
    const progress = opts.onProgress ? { onProgress: opts.onProgress } : {};
    let predictions: (TextPrediction | ScorePrediction)[];
    let miss: VqaAccuracy | undefined;
    if (family === 'vit') {
      if (ds.task !== 'classify') throw new Error('unreachable');
      predictions = await scoreClassifier(model, ds.result.examples, {
        imageRoot: root, preprocessor: classifierPreprocessor(model, opts.model, opts.preprocessor), labelNames: ds.result.labelNames,
        ...(opts.batchSize ? { batchSize: opts.batchSize } : {}), ...progress,
      });
    } else if (family === 'llava') {
      const setup = llavaSetup(model, opts.model, { ...(opts.tokenizer ? { tokenizer: opts.tokenizer } : {}), ...(opts.prompt ? { prompt: opts.prompt } : {}) });
      predictions = await generateLlava(model, conversationsOf(ds, opts.reportPrompt ?? DEFAULT_REPORT_PROMPT), setup, {
        imageRoot: root, ...(opts.batchSize ? { batchSize: opts.batchSize } : {}), ...(opts.maxNewTokens ? { maxNewTokens: opts.maxNewTokens } : {}), ...progress,
      });
    } else {
      const tokenizer = opts.tokenizer ?? (statSync(opts.model).isDirectory() ? opts.model : dirname(opts.model));
      const data = BlipDataset.open(opts.data, model, { tokenizer, images: root, ...(opts.format ? { format: opts.format } : {}), ...(opts.split ? { split: opts.split } : {}) });
      const ids = ds.result.examples.map((e) => e.id);
      if (data.examples.length !== ids.length || data.examples.some((e, i) => e.id !== ids[i])) {
        throw new Error(`${opts.data}: BLIP's reading of the file differs from the dataset's (${data.examples.length} vs ${ids.length} examples); options like --section do not apply to BLIP data`);
      }
      const r = await evaluateBlip(model, data, {
        ...(opts.batchSize ? { batchSize: opts.batchSize } : {}), ...(opts.maxNewTokens ? { maxNewTokens: opts.maxNewTokens } : {}),
        ...(opts.numBeams ? { numBeams: opts.numBeams } : {}), ...progress,
      });
      predictions = r.predictions.map((p) => ({ id: p.id, prediction: p.prediction }));
      if (r.accuracy) miss = r.accuracy;
    }
    let predictionsFile: string | null = null;
    if (opts.out) {
      mkdirSync(opts.out, { recursive: true });
      predictionsFile = join(opts.out, PREDICTIONS_FILE);
      writePredictions(predictionsFile, predictions);
    }
    const metrics = scoreDataset(ds, new Map(predictions.map((p) => [p.id, p])), { predictions: predictionsFile ?? 'the predictions', reference: opts.data });
    const result: EvaluateResult = {
      task: ds.task, model: resolve(opts.model), adapter: opts.adapter ? resolve(opts.adapter) : null, data: resolve(opts.data),
      predictions, predictionsFile, metrics, ...(miss ? { miss } : {}),
    };
    if (opts.out) writeFileAtomicSync(join(opts.out, METRICS_FILE), `${JSON.stringify(evaluationJson(result), null, 2)}\n`);
    return result;
  } finally {
    model.dispose();
  }
}
