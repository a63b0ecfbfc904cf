// ROUGE-L from the longest common subsequence, in the two forms report papers use:
//  - pycocoevalcap's Rouge (R2Gen and most report-generation papers): whitespace tokens,
//    F-measure with beta = 1.2, best precision and recall over references, averaged over segments.
//  - rouge-score's rougeL F1 (beta = 1), with its default tokenizer (lower-case, runs of
//    characters other than a-z0-9 are separators), no stemming.

export function lcsLength(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  let prev = new Array<number>(b.length + 1).fill(0);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

function words(s: string): string[] {
  return s.split(/\s+/).filter((t) => t !== '');
}

/** pycocoevalcap ROUGE-L for one segment (beta 1.2). */
export function cocoRougeLSegment(hyp: string, refs: readonly string[], beta = 1.2): number {
  const h = words(hyp);
  let bestP = 0;
  let bestR = 0;
  for (const ref of refs) {
    const r = words(ref);
    const lcs = lcsLength(r, h);
    const p = h.length ? lcs / h.length : 0;
    const rec = r.length ? lcs / r.length : 0;
    bestP = Math.max(bestP, p);
    bestR = Math.max(bestR, rec);
  }
  if (bestP === 0 || bestR === 0) return 0;
  return ((1 + beta * beta) * bestP * bestR) / (bestR + beta * beta * bestP);
}

/** Mean of the per-segment pycocoevalcap ROUGE-L scores. 0..1. */
export function cocoRougeL(hyps: readonly string[], refs: readonly (string | readonly string[])[]): number {
  if (hyps.length !== refs.length) throw new RangeError(`ROUGE-L: ${hyps.length} hypotheses but ${refs.length} references`);
  if (hyps.length === 0) return 0;
  let sum = 0;
  hyps.forEach((h, i) => {
    const r = refs[i]!;
    sum += cocoRougeLSegment(h, typeof r === 'string' ? [r] : r);
  });
  return sum / hyps.length;
}

/** rouge-score's default tokenizer without stemming. */
export function rougeScoreTokens(s: string): string[] {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, ' ').split(/\s+/).filter((t) => t !== '');
}

/** rouge-score's rougeL F-measure for one pair. */
export function rougeLF1(hyp: string, ref: string): number {
  const h = rougeScoreTokens(hyp);
  const r = rougeScoreTokens(ref);
  if (h.length === 0 || r.length === 0) return 0;
  const lcs = lcsLength(r, h);
  const p = lcs / h.length;
  const rec = lcs / r.length;
  return p + rec > 0 ? (2 * p * rec) / (p + rec) : 0;
}

/** Mean rouge-score rougeL F1 over segments (first reference of each). 0..1. */
export function meanRougeLF1(hyps: readonly string[], refs: readonly (string | readonly string[])[]): number {
  if (hyps.length !== refs.length) throw new RangeError(`ROUGE-L: ${hyps.length} hypotheses but ${refs.length} references`);
  if (hyps.length === 0) return 0;
  let sum = 0;
  hyps.forEach((h, i) => {
    const r = refs[i]!;
    sum += rougeLF1(h, typeof r === 'string' ? r : r[0] ?? '');
  });
  return sum / hyps.length;
}
