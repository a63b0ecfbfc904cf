// Prediction files: JSON Lines with one record per example, keyed by the dataset's own id
// (`id` in conversation JSON, 'Image Index' in NIH CSVs, 'Path' in CheXpert). Text tasks carry
// `prediction` (LLaVA's answer files with `question_id` and `text` are read too); classifiers
// carry `scores`, one probability per label.
import { renameSync, writeFileSync } from 'node:fs';
import { DataError } from '../data/errors.ts';
import { JsonFields, readJsonRecords } from '../data/json-source.ts';

export interface TextPrediction { id: string; prediction: string; line: number }
export interface ScorePrediction { id: string; scores: number[]; line: number }

function indexById<T extends { id: string; line: number }>(file: string, items: T[]): Map<string, T> {
  const map = new Map<string, T>();
  for (const it of items) {
    const prior = map.get(it.id);
    if (prior) throw new DataError({ file, line: it.line, field: 'id' }, `duplicate id '${it.id}' (first at line ${prior.line})`);
    map.set(it.id, it);
  }
  return map;
}

export function readTextPredictions(file: string): Map<string, TextPrediction> {
  return indexById(file, readJsonRecords(file).map((r) => {
    const f = new JsonFields(file, r);
    const id = f.has('id') ? f.id('id') : f.has('question_id') ? f.id('question_id') : (() => { throw f.error('id', 'missing'); })();
    const prediction = f.has('prediction') ? f.text('prediction') : f.has('text') ? f.text('text') : (() => { throw f.error('prediction', 'missing'); })();
    return { id, prediction, line: r.line };
  }));
}

export function readScorePredictions(file: string, labelCount: number): Map<string, ScorePrediction> {
  return indexById(file, readJsonRecords(file).map((r) => {
    const f = new JsonFields(file, r);
    const scores = f.array('scores').map((v, i) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw f.error(`scores[${i}]`, `expected a finite number, found ${JSON.stringify(v)}`);
      return v;
    });
    if (scores.length !== labelCount) throw f.error('scores', `has ${scores.length} values, the reference has ${labelCount} labels`);
    return { id: f.id('id'), scores, line: r.line };
  }));
}

/** Pairs every reference id with its prediction; missing or unknown ids are one clear error. */
export function matchPredictions<P>(predFile: string, refFile: string, refIds: readonly string[], preds: ReadonlyMap<string, P>): P[] {
  const missing = refIds.filter((id) => !preds.has(id));
  if (missing.length) {
    throw new DataError({ file: predFile }, `no prediction for ${missing.length} of ${refIds.length} reference ids in ${refFile} (first: '${missing.slice(0, 3).join("', '")}')`);
  }
  const known = new Set(refIds);
  const extra = [...preds.keys()].filter((id) => !known.has(id));
  if (extra.length) throw new DataError({ file: predFile }, `${extra.length} predictions have ids not in ${refFile} (first: '${extra.slice(0, 3).join("', '")}')`);
  return refIds.map((id) => preds.get(id)!);
}

/** Writes predictions as JSON Lines atomically (temporary file, then rename). */
export function writePredictions(file: string, records: readonly ({ id: string; prediction: string } | { id: string; scores: number[] })[]): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''));
  renameSync(tmp, file);
}
