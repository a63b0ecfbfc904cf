// Metrics for medical VQA, report generation and multi-label classification, and scoring of
// prediction files against dataset files.
export { normalizeAnswer, tokenF1, exactMatch, scoreVqa, type VqaItem, type VqaScores } from './vqa.ts';
export { sacreBleu, cocoBleu, tokenize13a } from './bleu.ts';
export { cocoRougeL, cocoRougeLSegment, rougeLF1, meanRougeLF1, rougeScoreTokens, lcsLength } from './rouge.ts';
export { ciderD, type CiderResult } from './cider.ts';
export { binaryAuroc, multiLabelAuroc, type AurocResult, type MultiLabelAuroc } from './auroc.ts';
export { thresholdMetrics, type ThresholdMetrics } from './threshold.ts';
export { readTextPredictions, readScorePredictions, matchPredictions, writePredictions } from './predictions.ts';
export { scoreFiles, scoreDataset, scoreReports, type ScoreResult, type ReportScores, type ClassificationScores } from './score.ts';
