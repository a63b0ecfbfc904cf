// `medtune score`: scores a predictions file against the dataset file it was made from.
import { parseArgs } from 'node:util';
import { DATASET_FORMATS, type DatasetFormat } from '../../data/detect.ts';
import type { UncertainPolicy } from '../../data/formats/classification.ts';
import type { ReportSection } from '../../data/formats/report.ts';
import { scoreFiles, type ScoreResult } from '../../eval/score.ts';
import { UsageError, type Command } from '../command.ts';

const pct = (v: number | null) => (v === null ? 'n/a' : (100 * v).toFixed(2));
const num = (v: number | null, d = 4) => (v === null ? 'n/a' : v.toFixed(d));

/** The score table both `medtune score` and `medtune eval` print. */
export function printHuman(r: ScoreResult): void {
  const row = (k: string, v: string) => console.log(`${k.padEnd(30)} ${v}`);
  if (r.task === 'vqa') {
    const s = r.scores;
    row('questions', `${s.count.total} (${s.count.closed} closed, ${s.count.open} open)`);
    row('closed: yes/no accuracy', pct(s.closedAccuracy));
    row('closed: LLaVA-Med printed', pct(s.closedAccuracyLlavaMed));
    row('open: recall', pct(s.openRecall));
    row('open: exact match', pct(s.openExactMatch));
    row('open: token F1', pct(s.openF1));
    row('open: substring accuracy', pct(s.openSubstringAccuracy));
    row('overall', pct(s.overall));
  } else if (r.task === 'report') {
    const s = r.scores;
    row('reports', String(s.count));
    row('BLEU-1..4 (sacreBLEU)', [s.bleu.bleu1, s.bleu.bleu2, s.bleu.bleu3, s.bleu.bleu4].map((v) => v.toFixed(2)).join(' / '));
    row('BLEU-1..4 (pycocoevalcap)', [s.cocoBleu.bleu1, s.cocoBleu.bleu2, s.cocoBleu.bleu3, s.cocoBleu.bleu4].map((v) => v.toFixed(4)).join(' / '));
    row('ROUGE-L (pycocoevalcap)', num(s.rougeL));
    row('ROUGE-L F1 (rouge-score)', num(s.rougeLF1));
    row('CIDEr-D', num(s.ciderD));
  } else {
    const s = r.scores;
    row('images', String(s.count));
    const width = Math.max(...s.labels.map((l) => l.length), 5);
    console.log(`${'label'.padEnd(width)}  AUROC   acc@0.5  F1@0.5  pos/neg`);
    s.auroc.perLabel.forEach((p, i) => {
      const t = s.threshold.perLabel[i]!;
      console.log(`${p.label.padEnd(width)}  ${num(p.auroc).padEnd(6)}  ${num(t.accuracy).padEnd(7)}  ${num(t.f1).padEnd(6)}  ${p.positives}/${p.negatives}${p.reason ? `  (${p.reason})` : ''}`);
    });
    console.log(`${'macro'.padEnd(width)}  ${num(s.auroc.macro).padEnd(6)}  ${num(s.threshold.macroAccuracy).padEnd(7)}  ${num(s.threshold.macroF1)}`);
    if (s.auroc.undefinedLabels.length) console.log(`AUROC undefined (one class only), left out of the macro mean: ${s.auroc.undefinedLabels.join(', ')}`);
  }
  if (r.skipped) console.log(`skipped ${r.skipped} malformed reference records (--skip-bad)`);
}

export const score: Command = {
  name: 'score',
  summary: 'Score a predictions file (VQA, report generation, classification) against its dataset file',
  usage: 'medtune score --pred FILE --ref FILE [--task vqa|report|classify] [--format F] [--split S] [--section findings|impression|findings+impression] '
    + '[--uncertain ones|zeros|ignore] [--split-list FILE] [--skip-bad] [--json]',
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        pred: { type: 'string' }, ref: { type: 'string' }, task: { type: 'string' }, format: { type: 'string' },
        split: { type: 'string' }, section: { type: 'string' }, uncertain: { type: 'string' }, 'split-list': { type: 'string' },
        'skip-bad': { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
      },
    });
    if (!values.pred) throw new UsageError('--pred FILE is required');
    if (!values.ref) throw new UsageError('--ref FILE is required (the dataset file the predictions were made from)');
    if (values.task && !['vqa', 'report', 'classify'].includes(values.task)) throw new UsageError(`--task must be vqa, report or classify, not '${values.task}'`);
    if (values.format && !(DATASET_FORMATS as readonly string[]).includes(values.format)) throw new UsageError(`--format must be one of ${DATASET_FORMATS.join(', ')}`);
    if (values.uncertain && !['ones', 'zeros', 'ignore'].includes(values.uncertain)) throw new UsageError('--uncertain must be ones, zeros or ignore');
    if (values.section && !['full', 'findings', 'impression', 'findings+impression'].includes(values.section)) throw new UsageError('--section must be full, findings, impression or findings+impression');
    const result = scoreFiles(values.pred, values.ref, {
      ...(values.task ? { task: values.task as 'vqa' | 'report' | 'classify' } : {}),
      ...(values.format ? { format: values.format as DatasetFormat } : {}),
      ...(values.split ? { split: values.split } : {}),
      ...(values.section ? { section: values.section as ReportSection } : {}),
      ...(values.uncertain ? { uncertain: values.uncertain as UncertainPolicy } : {}),
      ...(values['split-list'] ? { splitList: values['split-list'] } : {}),
      skipBad: values['skip-bad'],
    });
    if (values.json) console.log(JSON.stringify({ task: result.task, skipped: result.skipped, ...result.scores }));
    else printHuman(result);
    return 0;
  },
};
