// Metrics against reference implementations run in Python on randomized inputs
// (scripts/python/ref_metrics.py): sacrebleu and scikit-learn themselves, and independent
// implementations of pycocoevalcap's BLEU, ROUGE-L and CIDEr-D and rouge-score's ROUGE-L.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  binaryAuroc, ciderD, cocoBleu, cocoRougeL, meanRougeLF1, multiLabelAuroc, sacreBleu, thresholdMetrics, tokenize13a,
} from '../../lib/eval/index.ts';
import { assertClose } from '../helpers/close.ts';
import { runPythonJson } from '../helpers/python.ts';

interface TextCase { hyps: string[]; refs: string[]; sacrebleu: number[]; coco_bleu: number[]; coco_rouge_l: number; rouge_l_f1: number; cider_d: number }
interface ClassifyCase { labels: number[][]; scores: number[][]; auroc: (number | null)[]; f1: number[]; accuracy: number[] }

const ref = runPythonJson<{ text: TextCase[]; classify: ClassifyCase[] }>('ref_metrics.py', ['20240611']);

describe('report metrics against Python references (25 random corpora)', () => {
  it('sacreBLEU corpus BLEU-1..4 with its defaults', () => {
    for (const c of ref.text) {
      const ours = [1, 2, 3, 4].map((k) => sacreBleu(c.hyps, c.refs, k));
      assertClose(ours, c.sacrebleu, { atol: 1e-6, rtol: 0, message: 'sacrebleu' });
    }
  });
  it('pycocoevalcap-style BLEU-1..4', () => {
    for (const c of ref.text) assertClose(cocoBleu(c.hyps, c.refs, 4), c.coco_bleu, { atol: 1e-6, rtol: 0, message: 'coco bleu' });
  });
  it('ROUGE-L (coco beta 1.2, and rouge-score F1)', () => {
    for (const c of ref.text) {
      assertClose(cocoRougeL(c.hyps, c.refs), c.coco_rouge_l, { atol: 1e-6, rtol: 0, message: 'coco rouge-l' });
      assertClose(meanRougeLF1(c.hyps, c.refs), c.rouge_l_f1, { atol: 1e-6, rtol: 0, message: 'rouge-score rougeL' });
    }
  });
  it('CIDEr-D', () => {
    for (const c of ref.text) assertClose(ciderD(c.hyps, c.refs).score, c.cider_d, { atol: 1e-6, rtol: 0, message: 'cider-d' });
  });
  it('13a tokenization by hand', () => {
    assert.equal(tokenize13a('Heart size is normal.No effusion, 3.5 cm; x-ray 3-4'), 'Heart size is normal . No effusion , 3.5 cm ; x-ray 3 - 4');
    assert.equal(tokenize13a('a &amp; b'), 'a & b');
  });
});

describe('classification metrics against scikit-learn (60 random cases with ties)', () => {
  it('per-label AUROC equals roc_auc_score; single-class labels are reported, not thrown', () => {
    let undefinedSeen = 0;
    for (const c of ref.classify) {
      const names = c.auroc.map((_, j) => `L${j}`);
      const r = multiLabelAuroc(names, c.labels, c.scores);
      r.perLabel.forEach((p, j) => {
        const expected = c.auroc[j];
        if (expected === null || expected === undefined) {
          undefinedSeen++;
          assert.equal(p.auroc, null);
          assert.match(p.reason!, /only one class/);
          assert.ok(r.undefinedLabels.includes(names[j]!));
        } else {
          assertClose(p.auroc!, expected, { atol: 1e-6, rtol: 0, message: 'auroc' });
        }
      });
      const defined = c.auroc.filter((v): v is number => v !== null);
      if (defined.length) assertClose(r.macro!, defined.reduce((a, b) => a + b, 0) / defined.length, { atol: 1e-6, rtol: 0 });
      else assert.equal(r.macro, null);
    }
    assert.ok(undefinedSeen > 0, 'the random cases include labels with one class');
  });
  it('accuracy and F1 at 0.5', () => {
    for (const c of ref.classify) {
      const names = c.f1.map((_, j) => `L${j}`);
      const t = thresholdMetrics(names, c.labels, c.scores);
      assertClose(t.perLabel.map((p) => p.f1!), c.f1, { atol: 1e-9, rtol: 0, message: 'f1' });
      assertClose(t.perLabel.map((p) => p.accuracy!), c.accuracy, { atol: 1e-9, rtol: 0, message: 'accuracy' });
    }
  });
  it('AUROC by hand: ties count one half, NaN labels are left out', () => {
    // pairs (pos, neg): (0.8 vs 0.5) win, (0.5 vs 0.5) tie, (0.8 vs 0.2), (0.5 vs 0.2) wins -> (3 + 0.5) / 4
    assert.equal(binaryAuroc([1, 1, 0, 0, Number.NaN], [0.8, 0.5, 0.5, 0.2, 0.9]).auroc, 3.5 / 4);
    assert.throws(() => binaryAuroc([1, 2], [0.1, 0.2]), /not 0 or 1/);
  });
});
