// Scores a predictions file against the dataset file itself: the task decides the metrics.
import { readDataset, type AnyDataset, type DatasetReadOptions } from '../data/detect.ts';
import { questionAndAnswer } from '../data/formats/conversation.ts';
import { multiLabelAuroc, type MultiLabelAuroc } from './auroc.ts';
import { cocoBleu, sacreBleu } from './bleu.ts';
import { ciderD } from './cider.ts';
import { matchPredictions, readScorePredictions, readTextPredictions } from './predictions.ts';
import { cocoRougeL, meanRougeLF1 } from './rouge.ts';
import { thresholdMetrics, type ThresholdMetrics } from './threshold.ts';
import { scoreVqa, type VqaScores } from './vqa.ts';

export interface ReportScores {
  count: number;
  /** sacreBLEU default corpus BLEU with max order 1..4 (0..100). */
  bleu: { bleu1: number; bleu2: number; bleu3: number; bleu4: number };
  /** pycocoevalcap BLEU-1..4 on whitespace tokens (0..1). */
  cocoBleu: { bleu1: number; bleu2: number; bleu3: number; bleu4: number };
  /** pycocoevalcap ROUGE-L (beta 1.2), 0..1. */
  rougeL: number;
  /** rouge-score rougeL F1, 0..1. */
  rougeLF1: number;
  /** pycocoevalcap CIDEr-D. */
  ciderD: number;
}

export function scoreReports(predictions: readonly string[], references: readonly string[]): ReportScores {
  const [c1, c2, c3, c4] = cocoBleu(predictions, references, 4) as [number, number, number, number];
  return {
    count: predictions.length,
    bleu: {
      bleu1: sacreBleu(predictions, references, 1), bleu2: sacreBleu(predictions, references, 2),
      bleu3: sacreBleu(predictions, references, 3), bleu4: sacreBleu(predictions, references, 4),
    },
    cocoBleu: { bleu1: c1, bleu2: c2, bleu3: c3, bleu4: c4 },
    rougeL: cocoRougeL(predictions, references),
    rougeLF1: meanRougeLF1(predictions, references),
    ciderD: ciderD(predictions, references).score,
  };
}

export interface ClassificationScores {
  count: number;
  labels: string[];
  auroc: MultiLabelAuroc;
  threshold: ThresholdMetrics;
}

export type ScoreResult =
  | { task: 'vqa'; scores: VqaScores; skipped: number }
  | { task: 'report'; scores: ReportScores; skipped: number }
  | { task: 'classify'; scores: ClassificationScores; skipped: number };

/** Reads `refFile` as a dataset and `predFile` as predictions keyed by its ids, and scores them. */
export function scoreFiles(predFile: string, refFile: string, opts: DatasetReadOptions & { task?: 'vqa' | 'report' | 'classify' } = {}): ScoreResult {
  const ds = readDataset(refFile, opts);
  if (opts.task && opts.task !== ds.task) throw new Error(`--task ${opts.task} does not fit ${refFile}, which reads as ${ds.format} (a ${ds.task} dataset)`);
  const preds = ds.task === 'classify' ? readScorePredictions(predFile, ds.result.labelNames.length) : readTextPredictions(predFile);
  return scoreDataset(ds, preds, { predictions: predFile, reference: refFile });
}

/**
 * Scores predictions (by the dataset's ids) against a dataset already read: what scoreFiles does
 * after reading both files, and what `medtune eval` does with the predictions it has just made,
 * so both report the same numbers for the same predictions. `where` names the two sides in errors.
 */
export function scoreDataset(
  ds: AnyDataset,
  preds: ReadonlyMap<string, { prediction: string } | { scores: number[] }>,
  where: { predictions: string; reference: string },
): ScoreResult {
  const skipped = ds.result.skipped.length;
  const text = (id: string): string => {
    const p = preds.get(id)!;
    if (!('prediction' in p)) throw new Error(`${where.predictions}: '${id}' has scores, but ${where.reference} is a ${ds.task} dataset that needs text predictions`);
    return p.prediction;
  };
  if (ds.task === 'vqa') {
    const examples = ds.result.examples;
    matchPredictions(where.predictions, where.reference, examples.map((e) => e.id), preds);
    return {
      task: 'vqa',
      skipped,
      scores: scoreVqa(examples.map((e) => ({
        id: e.id, prediction: text(e.id), answer: questionAndAnswer(e).answer, answerType: e.answerType ?? 'OPEN',
      }))),
    };
  }
  if (ds.task === 'report') {
    const examples = ds.result.examples;
    matchPredictions(where.predictions, where.reference, examples.map((e) => e.id), preds);
    return { task: 'report', skipped, scores: scoreReports(examples.map((e) => text(e.id)), examples.map((e) => e.report)) };
  }
  const { examples, labelNames } = ds.result;
  const matched = matchPredictions(where.predictions, where.reference, examples.map((e) => e.id), preds);
  const labels = examples.map((e) => e.labels);
  const scores = matched.map((p, i) => {
    if (!('scores' in p)) throw new Error(`${where.predictions}: '${examples[i]!.id}' has a text prediction, but ${where.reference} is a classification dataset that needs scores`);
    if (p.scores.length !== labelNames.length) throw new Error(`${where.predictions}: '${examples[i]!.id}' has ${p.scores.length} scores, the reference has ${labelNames.length} labels`);
    return p.scores;
  });
  return {
    task: 'classify',
    skipped,
    scores: { count: examples.length, labels: labelNames, auroc: multiLabelAuroc(labelNames, labels, scores), threshold: thresholdMetrics(labelNames, labels, scores) },
  };
}
