// Corpus BLEU two ways, since medical report papers use both:
//  - sacreBLEU's default corpus BLEU (tokenizer '13a', exponential smoothing, no lowercasing,
//    closest reference length), with max n-gram order 1..4 for BLEU-1..BLEU-4; scores 0..100.
//  - the pycocoevalcap BLEU that R2Gen-style report generation code reports: whitespace tokens,
//    cumulative geometric mean with the tiny/small constants (1e-15, 1e-9), 'closest' reference
//    length; scores 0..1.

/** sacreBLEU's 13a tokenizer (mteval-v13a): punctuation split off, except inside numbers. */
export function tokenize13a(line: string): string {
  let s = line.replace(/<skipped>/g, '').replace(/-\n/g, '').replace(/\n/g, ' ');
  if (s.includes('&')) s = s.replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  s = ` ${s} `;
  s = s.replace(/([{-~[-` -&(-+:-@/])/g, ' $1 ');
  s = s.replace(/([^0-9])([.,])/g, '$1 $2 ');
  s = s.replace(/([.,])([^0-9])/g, ' $1 $2');
  s = s.replace(/([0-9])(-)/g, '$1 $2 ');
  return s.split(/\s+/).filter((t) => t !== '').join(' ');
}

function whitespaceTokens(s: string): string[] {
  return s.split(/\s+/).filter((t) => t !== '');
}

function ngramCounts(tokens: readonly string[], maxOrder: number): Map<string, number>[] {
  const out = Array.from({ length: maxOrder }, () => new Map<string, number>());
  for (let n = 1; n <= maxOrder; n++) {
    const m = out[n - 1]!;
    for (let i = 0; i + n <= tokens.length; i++) {
      const key = tokens.slice(i, i + n).join('\u0001');
      m.set(key, (m.get(key) ?? 0) + 1);
    }
  }
  return out;
}

interface BleuStats {
  sysLen: number;
  refLen: number;
  correct: number[];
  total: number[];
}

/** Clipped n-gram matches summed over the corpus, with the closest reference length per segment. */
function corpusStats(hyps: readonly string[][], refs: readonly string[][][], maxOrder: number): BleuStats {
  const stats: BleuStats = { sysLen: 0, refLen: 0, correct: new Array(maxOrder).fill(0), total: new Array(maxOrder).fill(0) };
  hyps.forEach((hyp, i) => {
    const refSet = refs[i]!;
    const refMax = Array.from({ length: maxOrder }, () => new Map<string, number>());
    for (const ref of refSet) {
      ngramCounts(ref, maxOrder).forEach((m, n) => {
        for (const [k, c] of m) refMax[n]!.set(k, Math.max(refMax[n]!.get(k) ?? 0, c));
      });
    }
    // Closest reference length; ties go to the shorter reference.
    let closest = -1;
    let closestDiff = -1;
    for (const ref of refSet) {
      const diff = Math.abs(hyp.length - ref.length);
      if (closestDiff === -1 || diff < closestDiff || (diff === closestDiff && ref.length < closest)) {
        closestDiff = diff;
        closest = ref.length;
      }
    }
    stats.sysLen += hyp.length;
    stats.refLen += closest;
    ngramCounts(hyp, maxOrder).forEach((m, n) => {
      for (const [k, c] of m) {
        stats.total[n]! += c;
        stats.correct[n]! += Math.min(c, refMax[n]!.get(k) ?? 0);
      }
    });
  });
  return stats;
}

function checkCorpus(hyps: readonly string[], refs: readonly (string | readonly string[])[]): string[][] {
  if (hyps.length !== refs.length) throw new RangeError(`BLEU: ${hyps.length} hypotheses but ${refs.length} references`);
  return refs.map((r) => (typeof r === 'string' ? [r] : [...r]));
}

/** sacreBLEU corpus BLEU with its defaults, for max n-gram order `order` (BLEU-1..BLEU-4). 0..100. */
export function sacreBleu(hyps: readonly string[], refs: readonly (string | readonly string[])[], order = 4): number {
  const refSets = checkCorpus(hyps, refs);
  const s = corpusStats(
    hyps.map((h) => whitespaceTokens(tokenize13a(h.trimEnd()))),
    refSets.map((set) => set.map((r) => whitespaceTokens(tokenize13a(r.trimEnd())))),
    order,
  );
  const bp = s.sysLen < s.refLen ? (s.sysLen > 0 ? Math.exp(1 - s.refLen / s.sysLen) : 0) : 1;
  if (!s.correct.some((c) => c > 0)) return 0;
  const precisions = new Array<number>(order).fill(0);
  let smooth = 1;
  for (let n = 1; n <= order; n++) {
    if (s.total[n - 1] === 0) break;
    if (s.correct[n - 1] === 0) {
      smooth *= 2;
      precisions[n - 1] = 100 / (smooth * s.total[n - 1]!);
    } else {
      precisions[n - 1] = (100 * s.correct[n - 1]!) / s.total[n - 1]!;
    }
  }
  const logs = precisions.map((p) => (p === 0 ? -9999999999 : Math.log(p)));
  return bp * Math.exp(logs.reduce((a, b) => a + b, 0) / order);
}

/** pycocoevalcap-style corpus BLEU-1..BLEU-`maxOrder` on whitespace tokens. 0..1 each. */
export function cocoBleu(hyps: readonly string[], refs: readonly (string | readonly string[])[], maxOrder = 4): number[] {
  const refSets = checkCorpus(hyps, refs);
  const tiny = 1e-15;
  const small = 1e-9;
  const s = corpusStats(hyps.map(whitespaceTokens), refSets.map((set) => set.map(whitespaceTokens)), maxOrder);
  const out: number[] = [];
  let product = 1;
  const ratio = (s.sysLen + tiny) / (s.refLen + small);
  for (let k = 0; k < maxOrder; k++) {
    product *= (s.correct[k]! + tiny) / (s.total[k]! + small);
    let bleu = product ** (1 / (k + 1));
    if (ratio < 1) bleu *= Math.exp(1 - 1 / ratio);
    out.push(bleu);
  }
  return out;
}
