// Text generation by beam search or greedy decoding for models that decode from an encoded input
// (BLIP: answers from a question and an image, reports from an image), following transformers'
// generate(): the same options mean the same thing and give the same tokens.
import { nativePart } from '../torch/native.ts';
import { Tensor } from '../torch/tensor.ts';
import type { Batch, Model } from './model.ts';
import type { ModelsAddon } from './native-types.ts';

const addon = (): ModelsAddon => nativePart<ModelsAddon>();

export interface DecodeOptions {
  /** 1: greedy decoding; more: beam search (MISS / BLIP answer VQA questions with 3). */
  numBeams?: number;
  /** Total length, prompt included, as transformers' max_length (MISS: 10). Default 20. */
  maxLength?: number;
  /** Alternatively the number of tokens after the prompt. */
  maxNewTokens?: number;
  /** Total length before which EOS is forbidden (min_length). */
  minLength?: number;
  /** Finished hypotheses score sum(log p) / length ** lengthPenalty (default 1). */
  lengthPenalty?: number;
  /** transformers' early_stopping: false (default, its heuristic), true, or 'never'. */
  earlyStopping?: boolean | 'never';
  repetitionPenalty?: number;
  /** Default: the family's end token (BLIP: [SEP]). */
  eosTokenId?: number | number[];
  /** Written after a hypothesis ends (default: the family's pad token). */
  padTokenId?: number;
}

export interface DecodeOutput {
  /** (batch, prompt + generated): the prompt (BLIP: [DEC]), then the tokens through EOS, then padding. */
  sequences: Tensor;
  /** The returned hypothesis' beam score (beam search only). */
  scores: Tensor | null;
}

function familyTokens(model: Model): { eos: number[]; pad: number } {
  const spec = model.spec;
  if (spec.family === 'blip') return { eos: [spec.sepTokenId], pad: spec.padTokenId };
  return { eos: [], pad: 0 };
}

/**
 * Decodes text for each input of `batch` (BLIP: pixel_values, plus input_ids and attention_mask
 * of the question for VQA; without a question the decoder reads the image: captioning, report
 * generation). A prompt may be given as decoder_input_ids (same length for every row).
 */
export async function decode(model: Model, batch: Batch, opts: DecodeOptions = {}): Promise<DecodeOutput> {
  const defaults = familyTokens(model);
  const eos = opts.eosTokenId ?? defaults.eos;
  // The prompt decoding starts from: decoder_input_ids, a captioning model's input_ids minus its
  // [SEP] (BlipForConditionalGeneration.generate), else the BOS token alone.
  const captionPrompt = model.spec.family === 'blip' && model.spec.task === 'caption' ? batch['input_ids'] : undefined;
  const promptLength = batch['decoder_input_ids']?.shape[1] ?? (captionPrompt ? captionPrompt.shape[1]! - 1 : 1);
  const maxLength = opts.maxLength ?? (opts.maxNewTokens !== undefined ? promptLength + opts.maxNewTokens : 20);
  const nativeBatch: Record<string, Tensor['handle']> = {};
  for (const [k, t] of Object.entries(batch)) if (t) nativeBatch[k] = t.handle;
  const out = await addon().modelDecodeAsync(model.handle, nativeBatch, {
    numBeams: opts.numBeams ?? 1,
    maxLength,
    minLength: opts.minLength ?? 0,
    lengthPenalty: opts.lengthPenalty ?? 1,
    earlyStopping: opts.earlyStopping ?? false,
    repetitionPenalty: opts.repetitionPenalty ?? 1,
    eosTokenIds: Array.isArray(eos) ? eos : [eos],
    padTokenId: opts.padTokenId ?? defaults.pad,
  });
  return { sequences: Tensor.fromHandle(out.sequences), scores: out.scores ? Tensor.fromHandle(out.scores) : null };
}
