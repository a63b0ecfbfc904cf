// A checkpoint's tokenizer: tokenizer.json through the HF `tokenizers` package (the same Rust
// core as Python's), or a SentencePiece tokenizer.model converted as transformers converts it;
// special tokens and the chat template from tokenizer_config.json (or chat_template.jinja /
// chat_template.json, where newer transformers save it).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from 'tokenizers';
import { DataError } from '../errors.ts';
import { parseJson } from '../json-source.ts';
import { readSentencePieceModel, sentencePieceToTokenizerJson } from './sentencepiece.ts';

export interface SpecialTokens {
  bos?: string;
  eos?: string;
  unk?: string;
  pad?: string;
}

function readJsonObject(file: string): Record<string, unknown> {
  const value = parseJson(readFileSync(file, 'utf8'), file);
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new DataError({ file }, 'expected a JSON object');
  return value as Record<string, unknown>;
}

/** A special token as tokenizer_config.json writes it: a string or {content: ...}. */
function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

function chatTemplateOf(dir: string, config: Record<string, unknown>): string | null {
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return readFileSync(jinja, 'utf8');
  const t = config['chat_template'];
  if (typeof t === 'string') return t;
  // A list of named templates: the 'default' one is what apply_chat_template uses.
  if (Array.isArray(t)) {
    const named = t as { name?: string; template?: string }[];
    return (named.find((x) => x.name === 'default') ?? named[0])?.template ?? null;
  }
  const json = join(dir, 'chat_template.json');
  if (existsSync(json)) {
    const c = readJsonObject(json)['chat_template'];
    if (typeof c === 'string') return c;
  }
  return null;
}

export class TextTokenizer {
  constructor(
    readonly dir: string,
    readonly backend: Tokenizer,
    readonly config: Record<string, unknown>,
    readonly special: SpecialTokens,
    readonly chatTemplate: string | null,
    /** Whether encode() with special tokens prepends BOS (the post-processor's template). */
    readonly source: 'tokenizer.json' | 'tokenizer.model',
  ) {}

  async encode(text: string, opts: { addSpecialTokens?: boolean } = {}): Promise<number[]> {
    const enc = await this.backend.encode(text, null, { addSpecialTokens: opts.addSpecialTokens ?? true });
    return enc.getIds();
  }

  async decode(ids: number[], skipSpecialTokens = false): Promise<string> {
    return this.backend.decode(ids, skipSpecialTokens);
  }

  tokenToId(token: string): number | null {
    return this.backend.tokenToId(token);
  }

  idToToken(id: number): string | null {
    return this.backend.idToToken(id);
  }

  get vocabSize(): number {
    return this.backend.getVocabSize(true);
  }

  idOf(kind: keyof SpecialTokens): number | null {
    const t = this.special[kind];
    return t === undefined ? null : this.tokenToId(t);
  }

  /** Whether the checkpoint's tokenizer adds BOS by itself (tokenizer_config add_bos_token, else the post-processor). */
  get addsBos(): boolean {
    const v = this.config['add_bos_token'];
    if (typeof v === 'boolean') return v;
    return this.source === 'tokenizer.model';
  }
}

/** Loads the tokenizer of an HF checkpoint directory. */
export function loadTokenizer(dir: string): TextTokenizer {
  const configFile = join(dir, 'tokenizer_config.json');
  const config = existsSync(configFile) ? readJsonObject(configFile) : {};
  const special: SpecialTokens = {};
  for (const k of ['bos', 'eos', 'unk', 'pad'] as const) {
    const v = tokenString(config[`${k}_token`]);
    if (v !== undefined) special[k] = v;
  }
  const chatTemplate = chatTemplateOf(dir, config);
  const jsonFile = join(dir, 'tokenizer.json');
  if (existsSync(jsonFile)) {
    let backend: Tokenizer;
    try {
      backend = Tokenizer.fromFile(jsonFile);
    } catch (err) {
      throw new DataError({ file: jsonFile }, `cannot load tokenizer: ${(err as Error).message}`);
    }
    return new TextTokenizer(dir, backend, config, special, chatTemplate, 'tokenizer.json');
  }
  const modelFile = join(dir, 'tokenizer.model');
  if (existsSync(modelFile)) {
    const model = readSentencePieceModel(modelFile);
    const addedDecoder = config['added_tokens_decoder'] as Record<string, Record<string, unknown>> | undefined;
    const json = sentencePieceToTokenizerJson(model, modelFile, {
      ...(typeof config['legacy'] === 'boolean' ? { legacy: config['legacy'] } : {}),
      ...(typeof config['add_prefix_space'] === 'boolean' ? { addPrefixSpace: config['add_prefix_space'] } : {}),
      ...(typeof config['add_bos_token'] === 'boolean' ? { addBosToken: config['add_bos_token'] } : {}),
      ...(typeof config['add_eos_token'] === 'boolean' ? { addEosToken: config['add_eos_token'] } : {}),
      ...(special.bos ? { bosToken: special.bos } : {}),
      ...(special.eos ? { eosToken: special.eos } : {}),
      addedTokens: Object.entries(addedDecoder ?? {}).map(([id, t]) => ({
        id: Number(id), content: String(t['content']), special: Boolean(t['special']),
        lstrip: Boolean(t['lstrip']), rstrip: Boolean(t['rstrip']), normalized: Boolean(t['normalized']), single_word: Boolean(t['single_word']),
      })),
    });
    special.bos ??= model.pieces[model.bosId]?.piece;
    special.eos ??= model.pieces[model.eosId]?.piece;
    special.unk ??= model.pieces[model.unkId]?.piece;
    let backend: Tokenizer;
    try {
      backend = Tokenizer.fromString(JSON.stringify(json));
    } catch (err) {
      throw new DataError({ file: modelFile }, `converted tokenizer does not load: ${(err as Error).message}`);
    }
    return new TextTokenizer(dir, backend, config, special, chatTemplate, 'tokenizer.model');
  }
  throw new DataError({ file: dir }, 'no tokenizer.json or tokenizer.model in this directory');
}
