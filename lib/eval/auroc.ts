// Area under the ROC curve exactly as scikit-learn's roc_auc_score computes it for binary labels:
// the trapezoid rule over the ROC curve with tied scores grouped into one threshold, which equals
// the Mann-Whitney statistic with ties counted one half. A label without both classes has no
// AUROC (scikit-learn raises); here it is reported as undefined with the reason.

export type AurocResult = { auroc: number; positives: number; negatives: number } | { auroc: null; positives: number; negatives: number; reason: string };

/** Binary AUROC; NaN labels are left out (unknown / uncertain-ignored). */
export function binaryAuroc(labels: ArrayLike<number>, scores: ArrayLike<number>): AurocResult {
  if (labels.length !== scores.length) throw new RangeError(`AUROC: ${labels.length} labels but ${scores.length} scores`);
  const pairs: [number, number][] = [];
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (Number.isNaN(y)) continue;
    if (y !== 0 && y !== 1) throw new RangeError(`AUROC: label ${y} at index ${i} is not 0 or 1`);
    const s = scores[i]!;
    if (!Number.isFinite(s)) throw new RangeError(`AUROC: score ${s} at index ${i} is not finite`);
    pairs.push([s, y]);
  }
  const positives = pairs.filter((p) => p[1] === 1).length;
  const negatives = pairs.length - positives;
  if (positives === 0 || negatives === 0) {
    return { auroc: null, positives, negatives, reason: `only one class present (${positives} positive, ${negatives} negative)` };
  }
  // Descending scores; walk the distinct thresholds and add trapezoids, as sklearn's roc_curve + auc.
  pairs.sort((a, b) => b[0] - a[0]);
  let tp = 0;
  let fp = 0;
  let prevTp = 0;
  let prevFp = 0;
  let area = 0;
  for (let i = 0; i < pairs.length; i++) {
    if (pairs[i]![1] === 1) tp++;
    else fp++;
    const last = i === pairs.length - 1 || pairs[i + 1]![0] !== pairs[i]![0];
    if (last) {
      area += ((fp - prevFp) * (tp + prevTp)) / 2;
      prevTp = tp;
      prevFp = fp;
    }
  }
  return { auroc: area / (positives * negatives), positives, negatives };
}

export interface MultiLabelAuroc {
  perLabel: { label: string; auroc: number | null; positives: number; negatives: number; reason?: string }[];
  /** Mean over labels that have both classes; null when none has. */
  macro: number | null;
  /** Labels left out of the macro mean. */
  undefinedLabels: string[];
}

/** Per-label and macro AUROC for an [examples][labels] matrix. */
export function multiLabelAuroc(labelNames: readonly string[], labels: readonly (readonly number[])[], scores: readonly (readonly number[])[]): MultiLabelAuroc {
  if (labels.length !== scores.length) throw new RangeError(`AUROC: ${labels.length} label rows but ${scores.length} score rows`);
  const perLabel = labelNames.map((label, j) => {
    const r = binaryAuroc(labels.map((row) => row[j]!), scores.map((row, i) => {
      if (row.length !== labelNames.length) throw new RangeError(`AUROC: score row ${i} has ${row.length} values, expected ${labelNames.length}`);
      return row[j]!;
    }));
    return r.auroc === null ? { label, auroc: null, positives: r.positives, negatives: r.negatives, reason: r.reason } : { label, auroc: r.auroc, positives: r.positives, negatives: r.negatives };
  });
  const defined = perLabel.filter((p) => p.auroc !== null).map((p) => p.auroc!);
  return {
    perLabel,
    macro: defined.length ? defined.reduce((a, b) => a + b, 0) / defined.length : null,
    undefinedLabels: perLabel.filter((p) => p.auroc === null).map((p) => p.label),
  };
}
