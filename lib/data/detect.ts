// One entry point for every dataset format: detects the format from the file (CSV header, JSON
// record fields) unless told, and reads it. The CLI's --format flag maps onto DatasetFormat.
import { extname } from 'node:path';
import { parseCsvRows } from './csv.ts';
import { DataError, type ReadOptions, type ReadResult } from './errors.ts';
import { readJsonRecords, readText, parseJson } from './json-source.ts';
import { readConversations } from './formats/conversation.ts';
import { readPathVqa, readSlake, readVqaRad, type VqaRadSplit } from './formats/vqa.ts';
import { readReportAnnotations, type ReportSection } from './formats/report.ts';
import {
  readCheXpert, readLabelCsv, readNihChestXray14, readRsnaPneumonia, applySplitList,
  type ClassificationReadResult, type UncertainPolicy,
} from './formats/classification.ts';
import type { ConversationExample, ReportExample } from './types.ts';

export const DATASET_FORMATS = ['conversation', 'vqa-rad', 'slake', 'pathvqa', 'report', 'nih', 'chexpert', 'rsna', 'csv'] as const;
export type DatasetFormat = (typeof DATASET_FORMATS)[number];
export type TaskKind = 'vqa' | 'report' | 'classify';

export const TASK_OF_FORMAT: Record<DatasetFormat, TaskKind> = {
  conversation: 'vqa', 'vqa-rad': 'vqa', slake: 'vqa', pathvqa: 'vqa', report: 'report', nih: 'classify', chexpert: 'classify', rsna: 'classify', csv: 'classify',
};

/** Guesses the format from a CSV header or the fields of the first JSON record. */
export function detectFormat(file: string): DatasetFormat {
  const ext = extname(file).toLowerCase();
  const text = readText(file);
  if (ext === '.csv') {
    const header = (parseCsvRows(text.slice(0, 65536).split('\n')[0] ?? '', file)[0]?.cells ?? []).map((c) => c.trim());
    if (header.includes('Image Index') && header.includes('Finding Labels')) return 'nih';
    if (header.includes('Path') && header.includes('Pleural Effusion')) return 'chexpert';
    if (header.includes('patientId') && header.includes('Target')) return 'rsna';
    if (header.includes('question') && header.includes('answer')) return 'pathvqa';
    return 'csv';
  }
  const trimmed = text.replace(/^\uFEFF/, '').trimStart();
  if (trimmed.startsWith('{') && ext === '.json') {
    const value = parseJson(text, file) as Record<string, unknown>;
    const firstArray = Object.values(value).find((v) => Array.isArray(v) && v.length > 0) as unknown[] | undefined;
    const rec = firstArray?.[0] as Record<string, unknown> | undefined;
    if (rec && 'image_path' in rec && 'report' in rec) return 'report';
    throw new DataError({ file }, 'cannot tell the dataset format of this JSON object (expected annotation.json with splits of {id, image_path, report}); pass --format');
  }
  const first = readJsonRecords(file)[0]?.value as Record<string, unknown> | undefined;
  if (!first || typeof first !== 'object') throw new DataError({ file }, 'no records to detect the format from; pass --format');
  if ('conversations' in first || 'conversatons' in first) return 'conversation';
  if ('image_name' in first && ('phrase_type' in first || 'qid' in first)) return 'vqa-rad';
  if ('img_name' in first && 'q_lang' in first) return 'slake';
  if ('question' in first && 'answer' in first) return 'pathvqa';
  throw new DataError({ file, line: 1 }, `cannot tell the dataset format from fields ${Object.keys(first).join(', ')}; pass --format`);
}

export interface DatasetReadOptions extends ReadOptions {
  format?: DatasetFormat;
  /** report: annotation.json split; vqa-rad: train/test by phrase_type. */
  split?: string;
  section?: ReportSection;
  uncertain?: UncertainPolicy;
  /** classification: keep only (and order by) the images in this list file. */
  splitList?: string;
  languages?: string[];
}

export type AnyDataset =
  | { task: 'vqa'; format: DatasetFormat; result: ReadResult<ConversationExample> }
  | { task: 'report'; format: DatasetFormat; result: ReadResult<ReportExample> }
  | { task: 'classify'; format: DatasetFormat; result: ClassificationReadResult };

export function readDataset(file: string, opts: DatasetReadOptions = {}): AnyDataset {
  const format = opts.format ?? detectFormat(file);
  const base: ReadOptions = { skipBad: opts.skipBad ?? false };
  switch (format) {
    case 'conversation': return { task: 'vqa', format, result: readConversations(file, base) };
    case 'vqa-rad': return { task: 'vqa', format, result: readVqaRad(file, { ...base, split: (opts.split ?? 'all') as VqaRadSplit }) };
    case 'slake': return { task: 'vqa', format, result: readSlake(file, { ...base, ...(opts.languages ? { languages: opts.languages } : {}) }) };
    case 'pathvqa': return { task: 'vqa', format, result: readPathVqa(file, base) };
    case 'report': return { task: 'report', format, result: readReportAnnotations(file, { ...base, ...(opts.split ? { split: opts.split } : {}), ...(opts.section ? { section: opts.section } : {}) }) };
    default: {
      const result = format === 'nih' ? readNihChestXray14(file, base)
        : format === 'chexpert' ? readCheXpert(file, { ...base, ...(opts.uncertain ? { uncertain: opts.uncertain } : {}) })
          : format === 'rsna' ? readRsnaPneumonia(file, base)
            : readLabelCsv(file, base);
      if (opts.splitList) result.examples = applySplitList(result.examples, opts.splitList);
      return { task: 'classify', format, result };
    }
  }
}
