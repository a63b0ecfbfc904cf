// Answers from a LLaVA model (llava-hf or original LLaVA / LLaVA-Med layout) as their evaluation
// scripts produce them: the prompt is the conversation up to its last user turn with the
// assistant's generation prompt (the checkpoint's chat template, or LLaVA-Med's conversation
// template for checkpoints without one; lib/data's VlmExampleBuilder renders both), the image
// preprocessed by the checkpoint's processor (LLaVA's 'pad' aspect ratio included), greedy
// decoding until EOS, and the new tokens decoded without special tokens and trimmed
// (LLaVA-Med's model_vqa.py: batch_decode(skip_special_tokens=True)[0].strip()).
// Prompts are batched with left padding, as transformers' generate() wants them.
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { collatePixels } from '../../data/collate.ts';
import type { ImagePreprocessor } from '../../data/image/preprocess.ts';
import { PrefetchLoader } from '../../data/loader.ts';
import { loadPixels, type Pixels } from '../../data/pipelines.ts';
import { CONVERSATION_TEMPLATES, type ConversationTemplateName } from '../../data/text/conversation-templates.ts';
import { loadTokenizer, type TextTokenizer } from '../../data/text/tokenizer.ts';
import { VlmExampleBuilder, type PromptFormat } from '../../data/text/vlm-examples.ts';
import type { ConversationExample } from '../../data/types.ts';
import type { Model } from '../../models/model.ts';
import { llavaImageTokens, llavaPreprocessor, llavaPromptFormat } from '../../train/llava-inputs.ts';
import { tensor } from '../../torch/creation.ts';
import type { Tensor } from '../../torch/tensor.ts';

/** 'chat-template' (the tokenizer's), or one of LLaVA-Med's conversation templates. */
export type PromptStyle = 'chat-template' | ConversationTemplateName;
export const PROMPT_STYLES: readonly PromptStyle[] = ['chat-template', ...CONVERSATION_TEMPLATES];

export interface LlavaSetup {
  tokenizer: TextTokenizer;
  builder: VlmExampleBuilder;
  preprocessor: ImagePreprocessor;
  format: PromptFormat;
  padId: number;
}

export interface LlavaSetupOptions {
  /** Tokenizer directory (default: the model's directory). */
  tokenizer?: string | null;
  /** Default: the chat template for llava-hf checkpoints, LLaVA-Med's template for the original layout. */
  prompt?: PromptStyle | null;
}

function dirOf(path: string): string {
  return statSync(path).isDirectory() ? path : dirname(path);
}

export function llavaSetup(model: Model, modelPath: string, opts: LlavaSetupOptions = {}): LlavaSetup {
  if (model.spec.family !== 'llava') throw new Error(`${modelPath}: a ${model.architecture} model is not a LLaVA model`);
  const tokDir = opts.tokenizer ?? dirOf(modelPath);
  if (!existsSync(join(tokDir, 'tokenizer.json')) && !existsSync(join(tokDir, 'tokenizer.model'))) {
    throw new Error(`${tokDir}: no tokenizer.json or tokenizer.model (pass --tokenizer DIR)`);
  }
  const tokenizer = loadTokenizer(tokDir);
  // The same prompt format, image tokens, BOS rule and image processor as training uses.
  const format = llavaPromptFormat(model, tokenizer, opts.prompt === 'chat-template' ? 'chat' : opts.prompt ?? null);
  const builder = new VlmExampleBuilder(tokenizer, format, llavaImageTokens(model, tokenizer), { processorSpecialTokens: model.spec.layout === 'hf' });
  return { tokenizer, builder, preprocessor: llavaPreprocessor(model, dirOf(modelPath)).preprocessor, format, padId: tokenizer.idOf('pad') ?? 0 };
}

export interface TextPrediction {
  id: string;
  prediction: string;
}

export interface LlavaGenerateOptions {
  /** Folder the dataset's image paths are relative to. */
  imageRoot: string;
  batchSize?: number;
  /** Default 1024, LLaVA-Med's model_vqa.py setting; answers stop at EOS long before. */
  maxNewTokens?: number;
  onProgress?: (done: number, total: number) => void;
}

interface Prepared {
  ids: number[];
  pixels: Pixels | null;
}

/** Left-pads prompts: pad ids and attention_mask 0 on the left, as generate() expects. */
function leftPad(rows: readonly number[][], padId: number): { input_ids: Tensor; attention_mask: Tensor } {
  const length = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * length).fill(BigInt(padId));
  const mask = new BigInt64Array(rows.length * length);
  rows.forEach((r, i) => r.forEach((v, j) => {
    const at = i * length + (length - r.length) + j;
    ids[at] = BigInt(v);
    mask[at] = 1n;
  }));
  const shape = [rows.length, length];
  return { input_ids: tensor(ids, { shape }), attention_mask: tensor(mask, { shape }) };
}

/** The generated ids up to (not including) the first stop id. */
export function untilStop(ids: readonly number[], stop: ReadonlySet<number>): number[] {
  const end = ids.findIndex((t) => stop.has(t));
  return end < 0 ? [...ids] : ids.slice(0, end);
}

/** The ids generate() stops at: generation_config.json's eos_token_id, else config.json's. */
function stopIds(model: Model): Set<number> {
  const g = model.generationConfig?.['eos_token_id'];
  const fromSpec = (model.spec as { eosTokenIds?: number[] }).eosTokenIds ?? [];
  const ids = g === undefined || g === null ? fromSpec : Array.isArray(g) ? (g as number[]) : [g as number];
  return new Set(ids);
}

export async function generateLlava(model: Model, examples: readonly ConversationExample[], setup: LlavaSetup, opts: LlavaGenerateOptions): Promise<TextPrediction[]> {
  const batchSize = opts.batchSize ?? 8;
  const maxNewTokens = opts.maxNewTokens ?? 1024;
  const stop = stopIds(model);
  const pipeline = { imageRoot: opts.imageRoot, preprocessor: setup.preprocessor };
  const loader = new PrefetchLoader<ConversationExample, Prepared, { rows: number[][]; pixels: (Pixels | null)[] }>(
    examples,
    async (e) => ({ ids: await setup.builder.promptIds(e), pixels: e.image === undefined ? null : await loadPixels(e.image, e.source, pipeline) }),
    (loaded) => ({ rows: loaded.map((l) => l.ids), pixels: loaded.map((l) => l.pixels) }),
    { batchSize, shuffle: false },
  );
  const out: TextPrediction[] = [];
  model.eval();
  for await (const b of loader.epoch(0)) {
    const batchExamples = examples.slice(out.length, out.length + b.rows.length);
    const images = b.pixels.filter((p): p is Pixels => p !== null);
    if (images.length !== 0 && images.length !== b.pixels.length) {
      throw new Error(`${batchExamples[0]!.source.file}: a batch mixes questions with and without images; evaluate them with --batch-size 1`);
    }
    const { input_ids, attention_mask } = leftPad(b.rows, setup.padId);
    const owned: Tensor[] = [input_ids, attention_mask];
    const place = (t: Tensor, float: boolean): Tensor => {
      const want = { device: model.device, ...(float ? { dtype: model.dtype } : {}) };
      if (t.device === want.device && (!float || t.dtype === model.dtype)) return t;
      const moved = t.to(want);
      owned.push(moved);
      return moved;
    };
    try {
      let pixel_values: Tensor | null = null;
      if (images.length) {
        pixel_values = collatePixels(images);
        owned.push(pixel_values);
      }
      const inputs = { input_ids: place(input_ids, false), attention_mask: place(attention_mask, false), pixel_values: pixel_values && place(pixel_values, true) };
      const { sequences, tokens } = await model.generate(inputs, { maxNewTokens, doSample: false });
      const rows = tokens.toArray() as number[][];
      sequences.dispose();
      tokens.dispose();
      for (let k = 0; k < rows.length; k++) {
        const text = await setup.tokenizer.decode(untilStop(rows[k]!, stop), true);
        out.push({ id: batchExamples[k]!.id, prediction: text.trim() });
      }
    } finally {
      for (const t of owned) t.dispose();
    }
    opts.onProgress?.(out.length, examples.length);
  }
  return out;
}
