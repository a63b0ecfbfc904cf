// LLaVA / LLaVA-Med conversation JSON (an array) and JSONL (one record a line):
// {id, image, conversations: [{from: 'human', value: '<image>\n...'}, {from: 'gpt', value}], answer_type?}
import { BadRecordPolicy, DataError, type ReadOptions, type ReadResult } from '../errors.ts';
import { JsonFields, readJsonRecords, describeType, type JsonRecord } from '../json-source.ts';
import type { ConversationExample, ConversationTurn, Speaker } from '../types.ts';

const SPEAKERS: Record<string, Speaker> = { human: 'human', user: 'human', gpt: 'gpt', assistant: 'gpt', system: 'system' };

export function normalizeAnswerType(raw: string | undefined, fields: JsonFields, field: string): 'CLOSED' | 'OPEN' | undefined {
  if (raw === undefined) return undefined;
  const t = raw.trim().toUpperCase();
  if (t === 'CLOSED' || t === 'OPEN') return t;
  throw fields.error(field, `answer type '${raw}' is neither CLOSED nor OPEN`);
}

export function conversationFromRecord(file: string, record: JsonRecord): ConversationExample {
  const f = new JsonFields(file, record);
  const id = f.id('id');
  // LLaVA-Med's own eval files carry the typo 'conversatons'; its scorer accepts both.
  const convField = f.has('conversations') ? 'conversations' : f.has('conversatons') ? 'conversatons' : 'conversations';
  const turns = f.array(convField);
  if (turns.length === 0) throw f.error(convField, 'empty conversation');
  const conversations: ConversationTurn[] = turns.map((t, i) => {
    const where = `${convField}[${i}]`;
    if (t === null || typeof t !== 'object' || Array.isArray(t)) throw f.error(where, `expected an object, found ${describeType(t)}`);
    const turn = t as Record<string, unknown>;
    if (typeof turn['from'] !== 'string') throw f.error(`${where}.from`, turn['from'] === undefined ? 'missing' : 'expected a string');
    const from = SPEAKERS[turn['from'].toLowerCase()];
    if (!from) throw f.error(`${where}.from`, `unknown speaker '${turn['from']}' (expected human or gpt)`);
    if (typeof turn['value'] !== 'string') throw f.error(`${where}.value`, turn['value'] === undefined ? 'missing' : `expected a string, found ${describeType(turn['value'])}`);
    return { from, value: turn['value'] };
  });
  const firstSpeaking = conversations.find((t) => t.from !== 'system');
  if (firstSpeaking?.from !== 'human') throw f.error(`${convField}[0].from`, 'the conversation must start with a human turn');
  let image: string | undefined;
  if (f.has('image')) {
    const v = f.obj['image'];
    if (typeof v === 'string') image = v;
    else if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string') image = v[0];
    else throw f.error('image', `expected a file name, found ${describeType(v)}`);
  }
  const answerType = normalizeAnswerType(f.optionalString('answer_type'), f, 'answer_type');
  return {
    id,
    ...(image === undefined ? {} : { image }),
    conversations,
    ...(answerType === undefined ? {} : { answerType }),
    source: { file, line: record.line },
  };
}

/** Reads a conversation JSON array or JSONL file (decided by content). */
export function readConversations(file: string, opts: ReadOptions = {}): ReadResult<ConversationExample> {
  const policy = new BadRecordPolicy(opts.skipBad);
  const examples: ConversationExample[] = [];
  const seen = new Map<string, number>();
  for (const record of readJsonRecords(file)) {
    const ex = policy.guard(() => {
      const e = conversationFromRecord(file, record);
      const prior = seen.get(e.id);
      if (prior !== undefined) throw new DataError({ file, line: record.line, field: 'id' }, `duplicate id '${e.id}' (first at line ${prior})`);
      seen.set(e.id, record.line);
      return e;
    });
    if (ex) examples.push(ex);
  }
  return { file, examples, skipped: policy.skipped };
}

/** The first human question and the first answer of a VQA conversation. */
export function questionAndAnswer(ex: ConversationExample): { question: string; answer: string } {
  const human = ex.conversations.find((t) => t.from === 'human');
  const gpt = ex.conversations.find((t) => t.from === 'gpt');
  if (!human || !gpt) throw new DataError({ file: ex.source.file, line: ex.source.line, field: 'conversations' }, 'needs a human question and a gpt answer');
  return { question: human.value.replace(/<image>\s*/g, '').trim(), answer: gpt.value };
}
