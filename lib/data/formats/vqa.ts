// The public medical VQA releases, converted on load to the conversation form LLaVA-Med trains
// and scores on: human '<image>\n<question>', gpt '<answer>', answer_type CLOSED or OPEN.
//   VQA-RAD: 'VQA_RAD Dataset Public.json' (qid, image_name, question, answer, answer_type, phrase_type)
//   SLAKE:   train.json / validate.json / test.json (qid, img_name, question, answer, answer_type, q_lang)
//   PathVQA: question/answer records in JSON, JSONL or CSV (image, question, answer[, answer_type]);
//            LLaVA-Med's converted PathVQA JSON is conversation JSON (readConversations).
import { extname } from 'node:path';
import { csvRecords, parseCsvTable } from '../csv.ts';
import { BadRecordPolicy, DataError, type ReadOptions, type ReadResult } from '../errors.ts';
import { JsonFields, readJsonRecords, readText, type JsonRecord } from '../json-source.ts';
import type { ConversationExample } from '../types.ts';
import { normalizeAnswerType } from './conversation.ts';

export function vqaConversation(
  id: string, image: string, question: string, answer: string, answerType: 'CLOSED' | 'OPEN',
  source: { file: string; line: number }, meta?: Record<string, string>,
): ConversationExample {
  return {
    id,
    image,
    conversations: [
      { from: 'human', value: `<image>\n${question.trim()}` },
      { from: 'gpt', value: answer.trim() },
    ],
    answerType,
    source,
    ...(meta ? { meta } : {}),
  };
}

/** Yes/no answers are CLOSED, anything else OPEN (PathVQA's convention; its files carry no type). */
export function inferAnswerType(answer: string): 'CLOSED' | 'OPEN' {
  const a = answer.trim().toLowerCase();
  return a === 'yes' || a === 'no' ? 'CLOSED' : 'OPEN';
}

function collect(file: string, records: JsonRecord[], opts: ReadOptions, convert: (f: JsonFields) => ConversationExample | null): ReadResult<ConversationExample> {
  const policy = new BadRecordPolicy(opts.skipBad);
  const examples: ConversationExample[] = [];
  const seen = new Map<string, number>();
  for (const record of records) {
    const ex = policy.guard(() => {
      const e = convert(new JsonFields(file, record));
      if (e && seen.has(e.id)) throw new DataError({ file, line: record.line, field: 'id' }, `duplicate id '${e.id}' (first at line ${seen.get(e.id)})`);
      if (e) seen.set(e.id, record.line);
      return e;
    });
    if (ex) examples.push(ex);
  }
  return { file, examples, skipped: policy.skipped };
}

export type VqaRadSplit = 'train' | 'test' | 'all';

/**
 * VQA-RAD's public JSON. The split is carried by phrase_type: 'test_freeform'/'test_para' are the
 * test questions, 'freeform'/'para' the training ones.
 */
export function readVqaRad(file: string, opts: ReadOptions & { split?: VqaRadSplit } = {}): ReadResult<ConversationExample> {
  const split = opts.split ?? 'all';
  return collect(file, readJsonRecords(file), opts, (f) => {
    const phrase = f.optionalString('phrase_type') ?? '';
    const isTest = phrase.trim().toLowerCase().startsWith('test');
    if ((split === 'test' && !isTest) || (split === 'train' && isTest)) return null;
    const answerType = normalizeAnswerType(f.text('answer_type'), f, 'answer_type')!;
    const meta: Record<string, string> = { phrase_type: phrase };
    for (const k of ['question_type', 'image_organ']) if (f.has(k)) meta[k] = f.text(k);
    return vqaConversation(f.id('qid'), f.string('image_name'), f.text('question'), f.text('answer'), answerType, { file, line: f.record.line }, meta);
  });
}

/** SLAKE's train/validate/test JSON; English questions only unless `languages` says otherwise. */
export function readSlake(file: string, opts: ReadOptions & { languages?: string[] } = {}): ReadResult<ConversationExample> {
  const languages = new Set((opts.languages ?? ['en']).map((l) => l.toLowerCase()));
  return collect(file, readJsonRecords(file), opts, (f) => {
    const lang = f.string('q_lang').toLowerCase();
    if (!languages.has(lang)) return null;
    const answerType = normalizeAnswerType(f.text('answer_type'), f, 'answer_type')!;
    const meta: Record<string, string> = { q_lang: lang };
    for (const k of ['content_type', 'modality', 'location', 'base_type']) if (f.has(k)) meta[k] = f.text(k);
    return vqaConversation(f.id('qid'), f.string('img_name'), f.text('question'), f.text('answer'), answerType, { file, line: f.record.line }, meta);
  });
}

const IMAGE_FIELDS = ['image', 'image_name', 'img_name', 'img_id', 'image_id'];

/**
 * PathVQA question/answer records without pickle: JSON array, JSONL or CSV with an image column
 * (image, image_name, img_name, img_id or image_id), question and answer. Ids are `id`/`qid`
 * when present, else the record's position.
 */
export function readPathVqa(file: string, opts: ReadOptions & { imageExtension?: string } = {}): ReadResult<ConversationExample> {
  const withExt = (name: string) => (opts.imageExtension && !extname(name) ? `${name}${opts.imageExtension}` : name);
  if (extname(file).toLowerCase() === '.csv') {
    const table = parseCsvTable(readText(file), file, { requireColumns: ['question', 'answer'] });
    const imageCol = IMAGE_FIELDS.find((c) => table.header.includes(c));
    if (!imageCol) throw new DataError({ file, line: 1, field: 'image' }, `no image column (one of ${IMAGE_FIELDS.join(', ')})`);
    const policy = new BadRecordPolicy(opts.skipBad);
    const examples: ConversationExample[] = [];
    let index = 0;
    for (const r of csvRecords(table)) {
      const i = index++;
      const ex = policy.guard(() => {
        const answer = r.required('answer');
        const id = r.has('id') ? r.required('id') : r.has('qid') ? r.required('qid') : String(i);
        const typed = r.has('answer_type') ? r.cell('answer_type').trim().toUpperCase() : '';
        if (typed && typed !== 'CLOSED' && typed !== 'OPEN') throw r.error('answer_type', `answer type '${typed}' is neither CLOSED nor OPEN`);
        const answerType = (typed || inferAnswerType(answer)) as 'CLOSED' | 'OPEN';
        return vqaConversation(id, withExt(r.required(imageCol)), r.required('question'), answer, answerType, { file, line: r.line });
      });
      if (ex) examples.push(ex);
    }
    return { file, examples, skipped: policy.skipped };
  }
  return collect(file, readJsonRecords(file), opts, (f) => {
    const imageField = IMAGE_FIELDS.find((k) => f.has(k));
    if (!imageField) throw f.error('image', `missing (expected one of ${IMAGE_FIELDS.join(', ')})`);
    const answer = f.text('answer');
    const id = f.has('id') ? f.id('id') : f.has('qid') ? f.id('qid') : String(f.record.index);
    const answerType = normalizeAnswerType(f.optionalString('answer_type'), f, 'answer_type') ?? inferAnswerType(answer);
    return vqaConversation(id, withExt(f.text(imageField)), f.text('question'), answer, answerType, { file, line: f.record.line });
  });
}
