// SentencePiece tokenizer.model -> an equivalent HF tokenizers JSON, built the way transformers
// (5.x) builds a LlamaTokenizer from a checkpoint that ships only tokenizer.model (LLaVA-Med
// v1.5 does): the pieces become a byte-fallback BPE vocabulary whose merges are every split of a
// piece into two known pieces, ordered by the merged piece's id; Metaspace pre-tokenization
// ('first' prepend scheme, or 'always' for legacy=true); control and unknown pieces become
// special added tokens; a BOS/EOS template from add_bos_token/add_eos_token.
import { readFileSync } from 'node:fs';
import { DataError } from '../errors.ts';

export interface SentencePiece {
  piece: string;
  score: number;
  /** 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte */
  type: number;
}

export interface SentencePieceModel {
  pieces: SentencePiece[];
  /** 1 unigram, 2 bpe, 3 word, 4 char */
  modelType: number;
  byteFallback: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  addDummyPrefix: boolean;
}

// Minimal protobuf wire-format reader: varints, 32-bit floats, length-delimited fields.
class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array, readonly file: string) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.buf.length) throw new DataError({ file: this.file }, 'truncated protobuf (varint)');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new DataError({ file: this.file }, 'malformed protobuf varint');
    }
  }
  bytes(): Uint8Array {
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw new DataError({ file: this.file }, 'truncated protobuf (length-delimited field)');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  float(): number {
    if (this.pos + 4 > this.buf.length) throw new DataError({ file: this.file }, 'truncated protobuf (float)');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new DataError({ file: this.file }, `unsupported protobuf wire type ${wire}`);
  }
  /** Iterates (field number, wire type) pairs; the callback must consume the value. */
  fields(fn: (field: number, wire: number) => void): void {
    while (!this.done) {
      const key = this.varint();
      fn(Math.floor(key / 8), key % 8);
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const signed32 = (v: number) => (v >= 2 ** 31 ? v - 2 ** 32 : v > 2 ** 32 ? v - 2 ** 64 : v);

export function parseSentencePieceModel(buf: Uint8Array, file: string): SentencePieceModel {
  const model: SentencePieceModel = { pieces: [], modelType: 1, byteFallback: false, unkId: 0, bosId: 1, eosId: 2, addDummyPrefix: true };
  const top = new Reader(buf, file);
  top.fields((field, wire) => {
    if (field === 1 && wire === 2) {
      const r = new Reader(top.bytes(), file);
      const p: SentencePiece = { piece: '', score: 0, type: 1 };
      r.fields((f, w) => {
        if (f === 1 && w === 2) p.piece = utf8.decode(r.bytes());
        else if (f === 2 && w === 5) p.score = r.float();
        else if (f === 3 && w === 0) p.type = r.varint();
        else r.skip(w);
      });
      model.pieces.push(p);
    } else if (field === 2 && wire === 2) {
      const r = new Reader(top.bytes(), file);
      r.fields((f, w) => {
        if (w !== 0) return r.skip(w);
        const v = r.varint();
        if (f === 3) model.modelType = v;
        else if (f === 35) model.byteFallback = v !== 0;
        else if (f === 40) model.unkId = signed32(v);
        else if (f === 41) model.bosId = signed32(v);
        else if (f === 42) model.eosId = signed32(v);
      });
    } else if (field === 3 && wire === 2) {
      const r = new Reader(top.bytes(), file);
      r.fields((f, w) => {
        if (f === 3 && w === 0) model.addDummyPrefix = r.varint() !== 0;
        else r.skip(w);
      });
    } else {
      top.skip(wire);
    }
  });
  if (model.pieces.length === 0) throw new DataError({ file }, 'not a SentencePiece model (no pieces)');
  return model;
}

export function readSentencePieceModel(file: string): SentencePieceModel {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    throw new DataError({ file }, 'file not found');
  }
  return parseSentencePieceModel(new Uint8Array(buf.buffer, buf.byteOffset, buf.length), file);
}

/** transformers' generate_merges without scores: every (left, right) split of a piece into known pieces. */
export function generateMerges(vocab: Map<string, number>): [string, string][] {
  const merges: { l: string; r: string; rank: number }[] = [];
  for (const [piece, rank] of vocab) {
    const local: { l: string; r: string; rank: number }[] = [];
    const chars = Array.from(piece);
    for (let i = 1; i < chars.length; i++) {
      const l = chars.slice(0, i).join('');
      const r = chars.slice(i).join('');
      if (vocab.has(l) && vocab.has(r)) local.push({ l, r, rank });
    }
    local.sort((a, b) => vocab.get(a.l)! - vocab.get(b.l)! || vocab.get(a.r)! - vocab.get(b.r)!);
    merges.push(...local);
  }
  const len = (s: string) => Array.from(s).length;
  merges.sort((a, b) => a.rank - b.rank || len(a.l) - len(b.l) || len(a.r) - len(b.r));
  return merges.map((m) => [m.l, m.r]);
}

export interface ConversionOptions {
  legacy?: boolean;
  addPrefixSpace?: boolean;
  addBosToken?: boolean;
  addEosToken?: boolean;
  bosToken?: string;
  eosToken?: string;
  /** tokenizer_config.json's added_tokens_decoder: id -> token. */
  addedTokens?: { id: number; content: string; special: boolean; lstrip?: boolean; rstrip?: boolean; normalized?: boolean; single_word?: boolean }[];
}

/** The tokenizer.json (as an object) transformers would build for this SentencePiece model. */
export function sentencePieceToTokenizerJson(model: SentencePieceModel, file: string, opts: ConversionOptions = {}): Record<string, unknown> {
  if (model.modelType !== 2) {
    throw new DataError({ file }, `SentencePiece model type ${model.modelType === 1 ? 'unigram' : model.modelType} is not supported; only BPE models (Llama, Mistral) convert like transformers' LlamaTokenizer`);
  }
  const vocab = new Map<string, number>();
  model.pieces.forEach((p, i) => { if (!vocab.has(p.piece)) vocab.set(p.piece, i); });
  const addPrefixSpace = opts.addPrefixSpace ?? true;
  const legacy = opts.legacy ?? false;
  const prependScheme = addPrefixSpace ? (legacy ? 'always' : 'first') : 'never';
  const added = new Map<number, Record<string, unknown>>();
  const addToken = (id: number, content: string, special: boolean, extra: Partial<Record<string, boolean>> = {}) => {
    added.set(id, { id, content, single_word: extra['single_word'] ?? false, lstrip: extra['lstrip'] ?? false, rstrip: extra['rstrip'] ?? false, normalized: extra['normalized'] ?? false, special });
  };
  model.pieces.forEach((p, i) => {
    if (p.type === 2 || p.type === 3) addToken(i, p.piece, true);
    else if (p.type === 4) addToken(i, p.piece, false);
  });
  for (const t of opts.addedTokens ?? []) {
    addToken(t.id, t.content, t.special, { lstrip: t.lstrip ?? false, rstrip: t.rstrip ?? false, normalized: t.normalized ?? false, single_word: t.single_word ?? false });
  }
  const bos = opts.bosToken ?? model.pieces[model.bosId]?.piece ?? '<s>';
  const eos = opts.eosToken ?? model.pieces[model.eosId]?.piece ?? '</s>';
  const addBos = opts.addBosToken ?? true;
  const addEos = opts.addEosToken ?? false;
  const special = (id: string, typeId: number) => ({ SpecialToken: { id, type_id: typeId } });
  const seq = (id: string, typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const single = [...(addBos ? [special(bos, 0)] : []), seq('A', 0), ...(addEos ? [special(eos, 0)] : [])];
  const pair = [...single, ...(addBos ? [special(bos, 1)] : []), seq('B', 1), ...(addEos ? [special(eos, 1)] : [])];
  const specialTokens: Record<string, unknown> = {};
  if (addBos) specialTokens[bos] = { id: bos, ids: [vocab.get(bos)], tokens: [bos] };
  if (addEos) specialTokens[eos] = { id: eos, ids: [vocab.get(eos)], tokens: [eos] };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...added.values()].sort((a, b) => (a['id'] as number) - (b['id'] as number)),
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: prependScheme, split: false },
    post_processor: { type: 'TemplateProcessing', single, pair, special_tokens: specialTokens },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(addPrefixSpace ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: generateMerges(vocab),
    },
  };
}
