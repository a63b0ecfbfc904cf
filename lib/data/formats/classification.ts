// Chest X-ray classification lists as the public datasets ship them:
//   NIH ChestX-ray14: Data_Entry_2017.csv ('Image Index', 'Finding Labels' joined by '|'), plus
//                     split list files (train_val_list.txt, test_list.txt, 1%/10% subsets)
//   CheXpert:         train.csv / valid.csv ('Path', 5 competition labels, 1/0/-1/blank)
//   RSNA Pneumonia:   stage_2_train_labels.csv (patientId, x, y, width, height, Target; one row per box)
//   plain:            'path,label1,label2,...' with 0/1 labels
import { basename } from 'node:path';
import { CsvRecord, csvRecords, parseCsvTable } from '../csv.ts';
import { BadRecordPolicy, DataError, type ReadOptions, type ReadResult } from '../errors.ts';
import { readText } from '../json-source.ts';
import type { ClassificationExample } from '../types.ts';

/** The 14 ChestX-ray14 labels in the order CheXNet, MAE/MRM and MED-PEFT use. */
export const NIH_LABELS = [
  'Atelectasis', 'Cardiomegaly', 'Effusion', 'Infiltration', 'Mass', 'Nodule', 'Pneumonia',
  'Pneumothorax', 'Consolidation', 'Edema', 'Emphysema', 'Fibrosis', 'Pleural_Thickening', 'Hernia',
] as const;

/** CheXpert's five competition labels, in the order of the CheXpert paper. */
export const CHEXPERT_COMPETITION_LABELS = ['Atelectasis', 'Cardiomegaly', 'Consolidation', 'Edema', 'Pleural Effusion'] as const;

export const RSNA_LABELS = ['Pneumonia'] as const;

export interface ClassificationReadResult extends ReadResult<ClassificationExample> {
  labelNames: string[];
}

function finish(file: string, labelNames: string[], examples: ClassificationExample[], policy: BadRecordPolicy): ClassificationReadResult {
  return { file, labelNames, examples, skipped: policy.skipped };
}

function rows(file: string, requireColumns: string[]) {
  return csvRecords(parseCsvTable(readText(file), file, { requireColumns }));
}

function rejectDuplicate(seen: Map<string, number>, id: string, r: CsvRecord, column: string): void {
  const prior = seen.get(id);
  if (prior !== undefined) throw r.error(column, `duplicate '${id}' (first at line ${prior})`);
  seen.set(id, r.line);
}

/** NIH Data_Entry_2017.csv: 'No Finding' is all zeros; an unknown label is an error. */
export function readNihChestXray14(file: string, opts: ReadOptions = {}): ClassificationReadResult {
  const policy = new BadRecordPolicy(opts.skipBad);
  const index = new Map<string, number>(NIH_LABELS.map((l, i) => [l.toLowerCase(), i]));
  const examples: ClassificationExample[] = [];
  const seen = new Map<string, number>();
  for (const r of rows(file, ['Image Index', 'Finding Labels'])) {
    const ex = policy.guard(() => {
      const image = r.required('Image Index');
      const labels = new Array<number>(NIH_LABELS.length).fill(0);
      for (const raw of r.required('Finding Labels').split('|')) {
        const name = raw.trim();
        if (name.toLowerCase() === 'no finding') continue;
        // 'Pleural Thickening' appears with a space in some re-exports.
        const i = index.get(name.toLowerCase().replace(/ /g, '_'));
        if (i === undefined) throw r.error('Finding Labels', `unknown label '${name}' (expected one of ${NIH_LABELS.join(', ')} or 'No Finding')`);
        labels[i] = 1;
      }
      rejectDuplicate(seen, image, r, 'Image Index');
      return { id: image, image, labels, source: { file, line: r.line } };
    });
    if (ex) examples.push(ex);
  }
  return finish(file, [...NIH_LABELS], examples, policy);
}

export type UncertainPolicy = 'ones' | 'zeros' | 'ignore';

/**
 * CheXpert CSV. Blank means not mentioned (0, as the CheXpert baselines do); -1 (uncertain)
 * becomes 1 (U-Ones), 0 (U-Zeros) or NaN (ignored by the loss and the metrics).
 */
export function readCheXpert(file: string, opts: ReadOptions & { uncertain?: UncertainPolicy; labels?: readonly string[]; frontalOnly?: boolean } = {}): ClassificationReadResult {
  const labelNames = [...(opts.labels ?? CHEXPERT_COMPETITION_LABELS)];
  const uncertain = opts.uncertain ?? 'ones';
  const policy = new BadRecordPolicy(opts.skipBad);
  const examples: ClassificationExample[] = [];
  const seen = new Map<string, number>();
  for (const r of rows(file, ['Path', ...labelNames])) {
    const ex = policy.guard(() => {
      const path = r.required('Path');
      if (opts.frontalOnly && r.has('Frontal/Lateral') && r.cell('Frontal/Lateral').trim().toLowerCase() !== 'frontal') return undefined;
      const labels = labelNames.map((name) => {
        const v = r.number(name, true);
        if (v === null || v === 0) return 0;
        if (v === 1) return 1;
        if (v === -1) return uncertain === 'ones' ? 1 : uncertain === 'zeros' ? 0 : Number.NaN;
        throw r.error(name, `label value ${v} is not 1, 0, -1 or blank`);
      });
      rejectDuplicate(seen, path, r, 'Path');
      return { id: path, image: path, labels, source: { file, line: r.line } };
    });
    if (ex) examples.push(ex);
  }
  return finish(file, labelNames, examples, policy);
}

/**
 * RSNA Pneumonia Detection labels: one row per bounding box (or one row with Target 0); the
 * image-level label is Target, which must agree across a patient's rows. Images are
 * '<patientId>.dcm'.
 */
export function readRsnaPneumonia(file: string, opts: ReadOptions & { imageExtension?: string } = {}): ClassificationReadResult {
  const ext = opts.imageExtension ?? '.dcm';
  const policy = new BadRecordPolicy(opts.skipBad);
  const byPatient = new Map<string, ClassificationExample>();
  for (const r of rows(file, ['patientId', 'Target'])) {
    policy.guard(() => {
      const id = r.required('patientId');
      const target = r.number('Target')!;
      if (target !== 0 && target !== 1) throw r.error('Target', `expected 0 or 1, found ${target}`);
      const prior = byPatient.get(id);
      if (prior) {
        if (prior.labels[0] !== target) throw r.error('Target', `patient '${id}' has Target ${prior.labels[0]} at line ${prior.source.line} and ${target} here`);
        return;
      }
      byPatient.set(id, { id, image: `${id}${ext}`, labels: [target], source: { file, line: r.line } });
    });
  }
  return finish(file, [...RSNA_LABELS], [...byPatient.values()], policy);
}

/**
 * A plain CSV: an image path column (`pathColumn`, else 'path', else the first column) and every
 * other column (or `labelColumns`) a 0/1 label; blanks are NaN (unknown) only with `allowMissing`.
 */
export function readLabelCsv(file: string, opts: ReadOptions & { pathColumn?: string; labelColumns?: string[]; allowMissing?: boolean } = {}): ClassificationReadResult {
  const table = parseCsvTable(readText(file), file);
  const pathColumn = opts.pathColumn ?? (table.header.includes('path') ? 'path' : table.header[0]!);
  if (!table.header.includes(pathColumn)) throw new DataError({ file, line: 1, field: pathColumn }, 'missing column');
  const labelNames = opts.labelColumns ?? table.header.filter((c) => c !== pathColumn);
  if (labelNames.length === 0) throw new DataError({ file, line: 1 }, 'no label columns');
  for (const c of labelNames) if (!table.header.includes(c)) throw new DataError({ file, line: 1, field: c }, 'missing column');
  const policy = new BadRecordPolicy(opts.skipBad);
  const examples: ClassificationExample[] = [];
  const seen = new Map<string, number>();
  for (const r of csvRecords(table)) {
    const ex = policy.guard(() => {
      const path = r.required(pathColumn);
      const labels = labelNames.map((name) => {
        const v = r.number(name, opts.allowMissing ?? false);
        if (v === null) return Number.NaN;
        if (v !== 0 && v !== 1) throw r.error(name, `label value ${v} is not 0 or 1`);
        return v;
      });
      rejectDuplicate(seen, path, r, pathColumn);
      return { id: path, image: path, labels, source: { file, line: r.line } };
    });
    if (ex) examples.push(ex);
  }
  return finish(file, labelNames, examples, policy);
}

/**
 * Reads a split list (train_val_list.txt, test_list.txt, train_1.txt ...): one image per line,
 * the first whitespace-separated field; '#' comments and blank lines are ignored.
 */
export function readSplitList(file: string): { names: string[]; lines: number[] } {
  const names: string[] = [];
  const lines: number[] = [];
  readText(file).split('\n').forEach((raw, i) => {
    const s = raw.trim();
    if (s === '' || s.startsWith('#')) return;
    names.push(s.split(/[\s,]+/)[0]!);
    lines.push(i + 1);
  });
  return { names, lines };
}

/**
 * The examples named by a split list, in the list's order. Entries match an example's id or the
 * base name of its image. A name the dataset lacks is an error naming the list's line.
 */
export function applySplitList<T extends ClassificationExample>(examples: readonly T[], listFile: string): T[] {
  const byName = new Map<string, T>();
  for (const ex of examples) {
    byName.set(ex.id, ex);
    byName.set(basename(ex.image), ex);
  }
  const { names, lines } = readSplitList(listFile);
  return names.map((name, i) => {
    const ex = byName.get(name) ?? byName.get(basename(name));
    if (!ex) throw new DataError({ file: listFile, line: lines[i]! }, `'${name}' is not in the dataset`);
    return ex;
  });
}

/**
 * A deterministic label-fraction subset (e.g. 0.01 or 0.1 of the training set) when no official
 * split list exists: a seeded shuffle, then the first ceil(fraction * n) examples in file order.
 */
export function fractionSubset<T>(examples: readonly T[], fraction: number, seed = 0): T[] {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`fraction must be in (0, 1], got ${fraction}`);
  const n = examples.length;
  const k = Math.ceil(fraction * n);
  const order = Array.from({ length: n }, (_, i) => i);
  let state = (seed >>> 0) || 0x9e3779b9;
  const next = () => {
    // xorshift32: small, seedable and the same on every platform.
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    return state / 2 ** 32;
  };
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.slice(0, k).sort((a, b) => a - b).map((i) => examples[i]!);
}
