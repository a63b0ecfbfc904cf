// CIDEr-D as pycocoevalcap's Cider scorer computes it (Vedantam et al. 2015, the "-D" variant:
// clipped tf-idf n-gram vectors, a Gaussian length penalty with sigma 6, scaled by 10), with the
// document frequencies taken from the references of the scored corpus. Whitespace tokens,
// n = 1..4. Like pycocoevalcap, the "length" in the penalty counts bigrams.

type Counts = Map<string, number>;

function precook(s: string, n: number): Counts {
  const w = s.split(/\s+/).filter((t) => t !== '');
  const out: Counts = new Map();
  for (let k = 1; k <= n; k++) {
    for (let i = 0; i + k <= w.length; i++) {
      const key = `${k}\u0002${w.slice(i, i + k).join('\u0001')}`;
      out.set(key, (out.get(key) ?? 0) + 1);
    }
  }
  return out;
}

const orderOf = (key: string) => Number(key.slice(0, key.indexOf('\u0002'))) - 1;

export interface CiderResult {
  score: number;
  perSegment: number[];
}

export function ciderD(hyps: readonly string[], refs: readonly (string | readonly string[])[], opts: { n?: number; sigma?: number } = {}): CiderResult {
  const n = opts.n ?? 4;
  const sigma = opts.sigma ?? 6;
  if (hyps.length !== refs.length) throw new RangeError(`CIDEr-D: ${hyps.length} hypotheses but ${refs.length} references`);
  if (hyps.length === 0) return { score: 0, perSegment: [] };
  const crefs = refs.map((r) => (typeof r === 'string' ? [r] : [...r]).map((s) => precook(s, n)));
  const ctest = hyps.map((h) => precook(h, n));
  const df = new Map<string, number>();
  for (const set of crefs) {
    const seen = new Set<string>();
    for (const c of set) for (const k of c.keys()) seen.add(k);
    for (const k of seen) df.set(k, (df.get(k) ?? 0) + 1);
  }
  const refLen = Math.log(crefs.length);
  const toVec = (cnts: Counts) => {
    const vec = Array.from({ length: n }, () => new Map<string, number>());
    const norm = new Array<number>(n).fill(0);
    let length = 0;
    for (const [k, tf] of cnts) {
      const o = orderOf(k);
      const v = tf * (refLen - Math.log(Math.max(1, df.get(k) ?? 0)));
      vec[o]!.set(k, v);
      norm[o]! += v * v;
      if (o === 1) length += tf;
    }
    return { vec, norm: norm.map(Math.sqrt), length };
  };
  const perSegment = ctest.map((test, i) => {
    const h = toVec(test);
    const total = new Array<number>(n).fill(0);
    for (const ref of crefs[i]!) {
      const r = toVec(ref);
      const delta = h.length - r.length;
      for (let o = 0; o < n; o++) {
        let val = 0;
        for (const [k, v] of h.vec[o]!) val += Math.min(v, r.vec[o]!.get(k) ?? 0) * (r.vec[o]!.get(k) ?? 0);
        if (h.norm[o] !== 0 && r.norm[o] !== 0) val /= h.norm[o]! * r.norm[o]!;
        val *= Math.exp(-(delta * delta) / (2 * sigma * sigma));
        total[o]! += val;
      }
    }
    const mean = total.reduce((a, b) => a + b, 0) / n;
    return (mean / crefs[i]!.length) * 10;
  });
  return { score: perSegment.reduce((a, b) => a + b, 0) / perSegment.length, perSegment };
}
