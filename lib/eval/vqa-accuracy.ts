// Accuracy of generated VQA answers as generative Med-VQA models (MISS, built on BLIP) report it:
// a question is answered correctly when the generated answer equals the reference answer, and
// accuracy is reported for closed (yes/no) questions, open questions and overall. Both strings are
// lower-cased, trimmed and their whitespace collapsed; callers that decode through a tokenizer
// pass references through the same tokenizer first (see lib/eval/run/blip.ts), so that
// spacing the tokenizer introduces ("x - ray") does not count as an error.
import type { VqaItem } from './vqa.ts';

export interface VqaAccuracy {
  count: { closed: number; open: number; total: number };
  closed: number | null;
  open: number | null;
  overall: number | null;
}

export function normalizeForMatch(text: string): string {
  return text.toLowerCase().trim().replace(/\s+/g, ' ');
}

export function vqaAccuracy(items: readonly Pick<VqaItem, 'prediction' | 'answer' | 'answerType'>[]): VqaAccuracy {
  let closed = 0, open = 0, closedRight = 0, openRight = 0;
  for (const it of items) {
    const right = normalizeForMatch(it.prediction) === normalizeForMatch(it.answer) ? 1 : 0;
    if (it.answerType === 'CLOSED') {
      closed++;
      closedRight += right;
    } else {
      open++;
      openRight += right;
    }
  }
  const ratio = (a: number, b: number) => (b ? a / b : null);
  return {
    count: { closed, open, total: closed + open },
    closed: ratio(closedRight, closed),
    open: ratio(openRight, open),
    overall: ratio(closedRight + openRight, closed + open),
  };
}
