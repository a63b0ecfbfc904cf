// BLIP-style text: questions, answers and captions / reports tokenized the way Salesforce BLIP
// (and MISS, built on it) prepares them, with a BERT WordPiece tokenizer plus BLIP's two tokens:
//   question  pre_question (lower-case, drop .!"()*#:;~, at most 50 words), [CLS] q [SEP]
//             truncated to 35 tokens, [CLS] replaced by [ENC]            (blip_vqa.py)
//   answer    [DEC] a [SEP]; pads labelled -100                            (blip_vqa.py)
//   caption   pre_caption, [DEC] prompt caption [SEP] truncated to maxLength; the prompt and
//             pads labelled -100                                            (blip.py BLIP_Decoder)
// transformers' BlipProcessor keeps [CLS] at the start of questions; `questionStart: 'cls'`
// reproduces that for checkpoints fine-tuned through transformers.
import { DataError } from '../errors.ts';
import type { ConversationExample, ReportExample } from '../types.ts';
import type { TextTokenizer } from './tokenizer.ts';
import { IGNORE_INDEX } from './vlm-examples.ts';

const PUNCTUATION = /[.!"()*#:;~]/g;

/** Salesforce BLIP's data/utils.py pre_question. */
export function preQuestion(question: string, maxWords = 50): string {
  const q = question.toLowerCase().replace(PUNCTUATION, '').replace(/ +$/, '');
  const words = q.split(' ');
  return words.length > maxWords ? words.slice(0, maxWords).join(' ') : q;
}

/** Salesforce BLIP's data/utils.py pre_caption. */
export function preCaption(caption: string, maxWords = 50): string {
  let c = caption.toLowerCase().replace(PUNCTUATION, ' ').replace(/\s{2,}/g, ' ');
  c = c.replace(/\n+$/, '').replace(/^ +| +$/g, '');
  const words = c.split(' ');
  return words.length > maxWords ? words.slice(0, maxWords).join(' ') : c;
}

export interface BlipTokenIds {
  cls: number;
  sep: number;
  pad: number;
  /** [DEC]: starts answers and captions (the decoder's BOS). */
  dec: number;
  /** [ENC]: replaces [CLS] at the start of questions. */
  enc: number;
}

/**
 * BLIP's token ids from a BERT tokenizer. A plain BERT tokenizer (bert-base-uncased) gets [DEC]
 * and [ENC] added as BLIP's init_tokenizer adds them, so they take the ids after the vocabulary
 * (30522 and 30523 for bert-base-uncased), as in every BLIP checkpoint.
 */
export function blipTokenIds(tokenizer: TextTokenizer): BlipTokenIds {
  const id = (t: string) => tokenizer.tokenToId(t);
  if (id('[DEC]') === null) tokenizer.backend.addSpecialTokens(['[DEC]']);
  if (id('[ENC]') === null) tokenizer.backend.addSpecialTokens(['[ENC]']);
  const ids = { cls: id('[CLS]'), sep: id('[SEP]'), pad: id('[PAD]'), dec: id('[DEC]'), enc: id('[ENC]') };
  for (const [k, v] of Object.entries(ids)) {
    if (v === null) throw new DataError({ file: tokenizer.dir }, `not a BERT WordPiece tokenizer for BLIP: it has no ${k === 'cls' ? '[CLS]' : k === 'sep' ? '[SEP]' : k === 'pad' ? '[PAD]' : `[${k.toUpperCase()}]`} token`);
  }
  return ids as BlipTokenIds;
}

export interface BlipTextOptions {
  /** Questions: BLIP's [ENC] (default) or [CLS] as transformers' BlipProcessor leaves it. */
  questionStart?: 'enc' | 'cls';
  /** Apply BLIP's pre_question / pre_caption (default true). */
  normalize?: boolean;
  /** Question tokens at most, [ENC] and [SEP] included (BLIP: 35). */
  questionMaxLength?: number;
  /** Caption / report tokens at most, [DEC] and [SEP] included (BLIP's captioning: 40; reports are longer). */
  captionMaxLength?: number;
  /** Caption prompt, unsupervised (BLIP's captioning: 'a picture of '; default none). */
  prompt?: string;
  /** Words kept by pre_question / pre_caption (BLIP: 50). */
  maxWords?: number;
}

export interface BlipVqaTokens {
  id: string;
  image?: string;
  question: number[];
  answer: number[];
  answerText: string;
  answerType?: 'CLOSED' | 'OPEN';
}

export interface BlipCaptionTokens {
  id: string;
  images: string[];
  ids: number[];
  labels: number[];
  text: string;
}

function questionAnswer(example: ConversationExample): { question: string; answer: string } {
  const human = example.conversations.find((t) => t.from === 'human');
  const gpt = example.conversations.find((t) => t.from === 'gpt');
  if (!human || !gpt) throw new DataError(example.source, `example '${example.id}' needs a question (human) and an answer (gpt) turn`);
  return { question: human.value.replace(/<image>\n?/g, '').trim(), answer: gpt.value.trim() };
}

export class BlipTextBuilder {
  readonly ids: BlipTokenIds;
  readonly opts: Required<Omit<BlipTextOptions, 'prompt'>> & { prompt: string };

  constructor(readonly tokenizer: TextTokenizer, opts: BlipTextOptions = {}) {
    this.ids = blipTokenIds(tokenizer);
    this.opts = {
      questionStart: opts.questionStart ?? 'enc',
      normalize: opts.normalize ?? true,
      questionMaxLength: opts.questionMaxLength ?? 35,
      captionMaxLength: opts.captionMaxLength ?? 40,
      prompt: opts.prompt ?? '',
      maxWords: opts.maxWords ?? 50,
    };
  }

  private async words(text: string): Promise<number[]> {
    return this.tokenizer.encode(text, { addSpecialTokens: false });
  }

  /** [start] tokens [SEP], truncated to `max` tokens as the tokenizer's truncation=True does. */
  private async sequence(start: number, text: string, max = Infinity): Promise<number[]> {
    const body = await this.words(text);
    return [start, ...body.slice(0, Math.max(0, max - 2)), this.ids.sep];
  }

  async question(text: string): Promise<number[]> {
    const q = this.opts.normalize ? preQuestion(text, this.opts.maxWords) : text;
    return this.sequence(this.opts.questionStart === 'enc' ? this.ids.enc : this.ids.cls, q, this.opts.questionMaxLength);
  }

  async answer(text: string): Promise<number[]> {
    return this.sequence(this.ids.dec, text);
  }

  async vqa(example: ConversationExample): Promise<BlipVqaTokens> {
    const { question, answer } = questionAnswer(example);
    return {
      id: example.id,
      ...(example.image !== undefined ? { image: example.image } : {}),
      question: await this.question(question),
      answer: await this.answer(answer),
      answerText: answer,
      ...(example.answerType ? { answerType: example.answerType } : {}),
    };
  }

  /** A caption or report: [DEC] prompt text [SEP]; the prompt is not supervised. */
  async caption(text: string, id = '', images: string[] = []): Promise<BlipCaptionTokens> {
    const body = this.opts.normalize ? preCaption(text, this.opts.maxWords) : text;
    const ids = await this.sequence(this.ids.dec, this.opts.prompt + body, this.opts.captionMaxLength);
    // BLIP_Decoder: prompt_length = len(tokenizer(prompt).input_ids) - 1, i.e. [DEC] + the prompt's tokens.
    const promptLength = this.opts.prompt ? 1 + (await this.words(this.opts.prompt)).length : 1;
    const labels = ids.map((t, i) => (i < promptLength ? IGNORE_INDEX : t));
    return { id, images, ids, labels, text: body };
  }

  async report(example: ReportExample): Promise<BlipCaptionTokens> {
    return this.caption(example.report, example.id, example.images);
  }

  /** The prompt to start decoding from: [DEC] and the prompt's tokens. */
  async decoderPrompt(): Promise<number[]> {
    return this.opts.prompt ? [this.ids.dec, ...(await this.words(this.opts.prompt))] : [this.ids.dec];
  }

  /** Decoded text of generated ids, special tokens skipped, the prompt removed. */
  async decodeGenerated(ids: readonly number[], promptLength = 1): Promise<string> {
    return (await this.tokenizer.decode([...ids.slice(promptLength)], true)).trim();
  }
}
