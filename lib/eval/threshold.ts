// Accuracy and F1 per label after thresholding probabilities at 0.5 (score >= threshold is
// positive), as scikit-learn's accuracy_score and f1_score(zero_division=0) compute them per label.

export interface ThresholdMetrics {
  perLabel: { label: string; accuracy: number | null; f1: number | null; support: number }[];
  macroAccuracy: number | null;
  macroF1: number | null;
}

export function thresholdMetrics(labelNames: readonly string[], labels: readonly (readonly number[])[], scores: readonly (readonly number[])[], threshold = 0.5): ThresholdMetrics {
  const perLabel = labelNames.map((label, j) => {
    let tp = 0, fp = 0, fn = 0, tn = 0;
    labels.forEach((row, i) => {
      const y = row[j]!;
      if (Number.isNaN(y)) return;
      const p = scores[i]![j]! >= threshold ? 1 : 0;
      if (p === 1 && y === 1) tp++;
      else if (p === 1) fp++;
      else if (y === 1) fn++;
      else tn++;
    });
    const n = tp + fp + fn + tn;
    if (n === 0) return { label, accuracy: null, f1: null, support: 0 };
    const denom = 2 * tp + fp + fn;
    return { label, accuracy: (tp + tn) / n, f1: denom === 0 ? 0 : (2 * tp) / denom, support: tp + fn };
  });
  const mean = (xs: (number | null)[]) => {
    const d = xs.filter((x): x is number => x !== null);
    return d.length ? d.reduce((a, b) => a + b, 0) / d.length : null;
  };
  return { perLabel, macroAccuracy: mean(perLabel.map((p) => p.accuracy)), macroF1: mean(perLabel.map((p) => p.f1)) };
}
