// Medical VQA scoring as LLaVA-Med's evaluation script (llava/eval/run_eval.py with
// eval_metrics/) computes it: answers are lower-cased and normalized (VQA-style punctuation,
// number words, articles, contractions); CLOSED questions score yes/no accuracy; OPEN questions
// score token recall (LLaVA-Med's "recall"), plus exact match, token F1 and substring accuracy.

const CONTRACTIONS: Record<string, string> = Object.fromEntries(
  ("aint:ain't arent:aren't cant:can't couldve:could've couldnt:couldn't couldn'tve:couldn't've couldnt've:couldn't've " +
   "didnt:didn't doesnt:doesn't dont:don't hadnt:hadn't hadnt've:hadn't've hadn'tve:hadn't've hasnt:hasn't havent:haven't " +
   "hed:he'd hed've:he'd've he'dve:he'd've hes:he's howd:how'd howll:how'll hows:how's Id've:I'd've I'dve:I'd've Im:I'm " +
   "Ive:I've isnt:isn't itd:it'd itd've:it'd've it'dve:it'd've itll:it'll let's:let's maam:ma'am mightnt:mightn't " +
   "mightnt've:mightn't've mightn'tve:mightn't've mightve:might've mustnt:mustn't mustve:must've neednt:needn't notve:not've " +
   "oclock:o'clock oughtnt:oughtn't ow's'at:'ow's'at 'ows'at:'ow's'at 'ow'sat:'ow's'at shant:shan't shed've:she'd've " +
   "she'dve:she'd've she's:she's shouldve:should've shouldnt:shouldn't shouldnt've:shouldn't've shouldn'tve:shouldn't've " +
   "somebody'd:somebodyd somebodyd've:somebody'd've somebody'dve:somebody'd've somebodyll:somebody'll somebodys:somebody's " +
   "someoned:someone'd someoned've:someone'd've someone'dve:someone'd've someonell:someone'll someones:someone's " +
   "somethingd:something'd somethingd've:something'd've something'dve:something'd've somethingll:something'll thats:that's " +
   "thered:there'd thered've:there'd've there'dve:there'd've therere:there're theres:there's theyd:they'd theyd've:they'd've " +
   "they'dve:they'd've theyll:they'll theyre:they're theyve:they've twas:'twas wasnt:wasn't wed've:we'd've we'dve:we'd've " +
   "weve:we've werent:weren't whatll:what'll whatre:what're whats:what's whatve:what've whens:when's whered:where'd " +
   "wheres:where's whereve:where've whod:who'd whod've:who'd've who'dve:who'd've wholl:who'll whos:who's whove:who've " +
   "whyll:why'll whyre:why're whys:why's wont:won't wouldve:would've wouldnt:wouldn't wouldnt've:wouldn't've " +
   "wouldn'tve:wouldn't've yall:y'all yall'll:y'all'll y'allll:y'all'll yall'd've:y'all'd've y'alld've:y'all'd've " +
   "y'all'dve:y'all'd've youd:you'd youd've:you'd've you'dve:you'd've youll:you'll youre:you're youve:you've")
    .split(' ').map((pair) => pair.split(':') as [string, string]),
);
const NUMBER_WORDS: Record<string, string> = {
  none: '0', zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5', six: '6', seven: '7', eight: '8', nine: '9', ten: '10',
};
const ARTICLES = new Set(['a', 'an', 'the']);
const PUNCT = [';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'];
const COMMA_IN_NUMBER = /(\d)(,)(\d)/;

/**
 * LLaVA-Med's normalize_word. Two quirks are kept on purpose so scores match: the period rule
 * removes at most 32 periods (their re.sub passes re.UNICODE as the count), and it removes a
 * period unless a digit follows.
 */
export function normalizeAnswer(text: string): string {
  let t = text;
  for (const p of PUNCT) {
    if (text.includes(`${p} `) || text.includes(` ${p}`) || COMMA_IN_NUMBER.test(text)) t = t.split(p).join('');
    else t = t.split(p).join(' ');
  }
  let removed = 0;
  t = t.replace(/\.(?!\d)/g, (m) => (removed++ < 32 ? '' : m));
  const out: string[] = [];
  for (const w of t.toLowerCase().split(/\s+/).filter((x) => x !== '')) {
    const mapped = NUMBER_WORDS[w] ?? w;
    if (!ARTICLES.has(mapped)) out.push(CONTRACTIONS[mapped] ?? mapped);
  }
  return out.join(' ').split(',').join('');
}

function wordCounts(s: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const w of s.toLowerCase().trim().split(/\s+/).filter((x) => x !== '')) m.set(w, (m.get(w) ?? 0) + 1);
  return m;
}

/** LLaVA-Med's calculate_f1score: token F1, precision and recall on normalized answers. */
export function tokenF1(prediction: string, reference: string): { f1: number; precision: number; recall: number } {
  const c = wordCounts(normalizeAnswer(prediction));
  const r = wordCounts(normalizeAnswer(reference));
  if (c.size === 0 || r.size === 0) return { f1: 0, precision: 0, recall: 0 };
  let tp = 0, fp = 0, fn = 0;
  for (const w of new Set([...c.keys(), ...r.keys()])) {
    if (c.has(w) && r.has(w)) tp += c.get(w)!;
    else if (c.has(w)) fp += c.get(w)!;
    else fn += r.get(w)!;
  }
  if (tp === 0) return { f1: 0, precision: 0, recall: 0 };
  const precision = tp / (tp + fp);
  const recall = tp / (tp + fn);
  return { f1: (2 * precision * recall) / (precision + recall), precision, recall };
}

/** LLaVA-Med's calculate_exactmatch: distinct reference words found, over the prediction's word count. */
export function exactMatch(prediction: string, reference: string): number {
  const c = wordCounts(normalizeAnswer(prediction));
  const r = wordCounts(normalizeAnswer(reference));
  let count = 0;
  for (const w of r.keys()) if (c.has(w)) count++;
  let total = 0;
  for (const v of c.values()) total += v;
  return total === 0 ? 0 : count / total;
}

export interface VqaItem {
  id: string;
  prediction: string;
  answer: string;
  answerType: 'CLOSED' | 'OPEN';
  /** Optional grouping (dataset meta such as content_type); scores are reported per group too. */
  group?: string;
}

export interface VqaScores {
  count: { closed: number; open: number; total: number };
  /** CLOSED: the normalized answer appears in a prediction that says yes or no. */
  closedAccuracy: number | null;
  /**
   * LLaVA-Med's printed "yes/no accuracy": its loop appends nothing when a prediction contains
   * yes/no but misses the answer, so those questions leave the denominator. Kept for comparison
   * with published tables; `closedAccuracy` is the plain accuracy.
   */
  closedAccuracyLlavaMed: number | null;
  /** OPEN: mean token recall (LLaVA-Med's "recall", the number its papers report for open questions). */
  openRecall: number | null;
  openPrecision: number | null;
  openF1: number | null;
  openExactMatch: number | null;
  /** OPEN: normalized answer is a substring of the normalized prediction. */
  openSubstringAccuracy: number | null;
  /** Mean of closedAccuracy and openRecall over all questions (each question weighs the same). */
  overall: number | null;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

export function scoreVqa(items: readonly VqaItem[]): VqaScores {
  const closed: number[] = [];
  const closedLlava: number[] = [];
  const recall: number[] = [], precision: number[] = [], f1: number[] = [], exact: number[] = [], substring: number[] = [];
  for (const it of items) {
    // run_eval.py lower-cases and normalizes, and the metric functions normalize again.
    const gt = normalizeAnswer(it.answer.toLowerCase());
    const pred = normalizeAnswer(it.prediction.toLowerCase());
    if (it.answerType === 'CLOSED') {
      const saysYesNo = pred.includes('yes') || pred.includes('no');
      const hit = saysYesNo && pred.includes(gt) ? 1 : 0;
      closed.push(hit);
      if (hit || !saysYesNo) closedLlava.push(hit);
    } else {
      const s = tokenF1(pred, gt);
      recall.push(s.recall);
      precision.push(s.precision);
      f1.push(s.f1);
      exact.push(exactMatch(pred, gt));
      substring.push(pred.includes(gt) ? 1 : 0);
    }
  }
  const all = [...closed, ...recall];
  return {
    count: { closed: closed.length, open: recall.length, total: items.length },
    closedAccuracy: mean(closed),
    closedAccuracyLlavaMed: mean(closedLlava),
    openRecall: mean(recall),
    openPrecision: mean(precision),
    openF1: mean(f1),
    openExactMatch: mean(exact),
    openSubstringAccuracy: mean(substring),
    overall: mean(all),
  };
}
