// Supervised training examples for vision-language models from conversation data.
//
// With a chat template (llava-hf checkpoints): for every assistant turn k,
//   prompt_k = template(messages before k, add_generation_prompt=True)
//   full_k   = template(messages up to and including k)
// all tokenized without adding special tokens; tokens from len(prompt_k) to len(full_k) are
// supervised, everything else (system, user turns, image tokens) is labelled -100. Without a
// chat template (original LLaVA-Med checkpoints) LLaVA-Med's conversation templates render the
// same prompt/full pairs and BOS is prepended when the tokenizer adds one, as LLaVA's
// tokenizer_image_token does.
//
// `<image>` becomes the model's image tokens: llava-hf repeats its image token
// image_seq_length times in the text (the processor's expansion); original LLaVA splices the
// vision features at a placeholder id (IMAGE_TOKEN_INDEX = -200) that the model replaces.
import type { ConversationExample } from '../types.ts';
import { DataError } from '../errors.ts';
import { applyChatTemplate, type ChatMessage } from './chat-template.ts';
import { renderConversation, type ConversationTemplateName, type ConvTurn } from './conversation-templates.ts';
import type { TextTokenizer } from './tokenizer.ts';

export const IGNORE_INDEX = -100;
export const LLAVA_IMAGE_TOKEN_INDEX = -200;

export type ImageTokens =
  | { kind: 'expand'; token: string; tokenId: number; count: number }
  | { kind: 'placeholder'; id: number }
  | { kind: 'none' };

/**
 * The image-token convention of a checkpoint from its config.json: llava-hf's
 * image_token_index (or image_token_id) and image_seq_length (else (image_size / patch_size)^2
 * from vision_config); original LLaVA / LLaVA-Med (mm_vision_tower, mm_projector_type) use the
 * -200 placeholder.
 */
export function imageTokensFromConfig(config: Record<string, unknown>, tokenizer: TextTokenizer, file = 'config.json'): ImageTokens {
  const id = (config['image_token_index'] ?? config['image_token_id']) as number | undefined;
  if (typeof id === 'number') {
    const token = tokenizer.idToToken(id);
    if (token === null) throw new DataError({ file, field: 'image_token_index' }, `id ${id} is not in the tokenizer's vocabulary`);
    let count = config['image_seq_length'] as number | undefined;
    if (typeof count !== 'number') {
      const v = config['vision_config'] as { image_size?: number; patch_size?: number } | undefined;
      if (!v?.image_size || !v.patch_size) throw new DataError({ file, field: 'image_seq_length' }, 'missing, and vision_config has no image_size/patch_size to derive it');
      count = (v.image_size / v.patch_size) ** 2;
      if (config['vision_feature_select_strategy'] === 'full') count += 1;
    }
    return { kind: 'expand', token, tokenId: id, count };
  }
  if ('mm_vision_tower' in config || 'mm_projector_type' in config || 'mm_hidden_size' in config) return { kind: 'placeholder', id: LLAVA_IMAGE_TOKEN_INDEX };
  return { kind: 'none' };
}

export type PromptFormat = { kind: 'chat-template' } | { kind: 'conversation'; template: ConversationTemplateName };

export interface TrainingExample {
  id: string;
  image?: string;
  inputIds: number[];
  labels: number[];
}

export interface BuilderOptions {
  /** Truncate longer examples to this many tokens (LLaVA's model_max_length). */
  maxLength?: number;
  /**
   * Chat-template path: tokenize as a llava-hf processor does. transformers' processors
   * (ProcessorMixin.apply_chat_template, and `processor(text=prompt)` as the model cards show)
   * tokenize with the tokenizer's special tokens unless the rendered text already starts with
   * bos_token, so a template without `{{ bos_token }}` (llava-1.5-hf's) still gets BOS. Without
   * this option the text is tokenized as tokenizer.apply_chat_template does (no special tokens).
   */
  processorSpecialTokens?: boolean;
}

const ROLE = { human: 'user', gpt: 'assistant', system: 'system' } as const;

export class VlmExampleBuilder {
  constructor(
    readonly tokenizer: TextTokenizer,
    readonly format: PromptFormat,
    readonly imageTokens: ImageTokens,
    readonly opts: BuilderOptions = {},
  ) {
    if (imageTokens.kind === 'expand' && tokenizer.tokenToId(imageTokens.token) !== imageTokens.tokenId) {
      throw new Error(`${tokenizer.dir}: image token '${imageTokens.token}' is not id ${imageTokens.tokenId} in the tokenizer`);
    }
    if (format.kind === 'chat-template' && !tokenizer.chatTemplate) {
      throw new Error(`${tokenizer.dir}: the tokenizer has no chat template; pick a LLaVA-Med conversation template (vicuna_v1, mistral_instruct)`);
    }
  }

  /** Tokenizes text without special tokens, turning `<image>` into the model's image tokens. */
  async tokenize(text: string): Promise<number[]> {
    const it = this.imageTokens;
    if (it.kind === 'expand') return this.tokenizer.encode(text.split('<image>').join(it.token.repeat(it.count)), { addSpecialTokens: false });
    if (it.kind === 'none') return this.tokenizer.encode(text, { addSpecialTokens: false });
    const out: number[] = [];
    const chunks = text.split('<image>');
    for (let i = 0; i < chunks.length; i++) {
      if (i > 0) out.push(it.id);
      if (chunks[i]) out.push(...(await this.tokenizer.encode(chunks[i]!, { addSpecialTokens: false })));
    }
    return out;
  }

  /**
   * The prompt for generation (evaluation): the conversation up to its last human turn, with the
   * open assistant slot.
   */
  renderPrompt(ex: ConversationExample): string {
    const lastHuman = ex.conversations.map((t) => t.from).lastIndexOf('human');
    const upTo = { ...ex, conversations: ex.conversations.slice(0, lastHuman + 1) };
    if (this.format.kind === 'chat-template') return applyChatTemplate(this.tokenizer, this.messages(upTo), { addGenerationPrompt: true });
    return renderConversation(this.format.template, [...this.convTurns(upTo), ['ASSISTANT', null]]);
  }

  /** Prompt token ids for generation, with BOS where the conversation-template path (or a processor) adds it. */
  async promptIds(ex: ConversationExample): Promise<number[]> {
    const text = this.renderPrompt(ex);
    if (this.format.kind === 'chat-template') return [...(await this.processorPrefix(text)), ...(await this.tokenize(text))];
    const ids = await this.tokenize(text);
    const bos = this.tokenizer.addsBos ? this.tokenizer.idOf('bos') : null;
    return bos === null ? ids : [bos, ...ids];
  }

  #specialPrefix: Promise<number[]> | null = null;

  /**
   * The ids a processor puts before the rendered text: none unless processorSpecialTokens, none
   * when the text starts with bos_token, else what the tokenizer's post-processor adds in front
   * (BOS for LLaMA-style tokenizers; a suffix such as add_eos_token's EOS is not reproduced).
   */
  private async processorPrefix(text: string): Promise<number[]> {
    if (!this.opts.processorSpecialTokens) return [];
    const bos = this.tokenizer.special.bos;
    if (bos !== undefined && text.startsWith(bos)) return [];
    this.#specialPrefix ??= (async () => {
      const probe = 'a';
      const plain = await this.tokenizer.encode(probe, { addSpecialTokens: false });
      const special = await this.tokenizer.encode(probe, { addSpecialTokens: true });
      for (let i = 0; i + plain.length <= special.length; i++) {
        if (plain.every((id, k) => special[i + k] === id)) return special.slice(0, i);
      }
      return [];
    })();
    return this.#specialPrefix;
  }

  private messages(ex: ConversationExample): ChatMessage[] {
    return ex.conversations.map((t) => ({ role: ROLE[t.from], content: t.value }));
  }

  private convTurns(ex: ConversationExample): ConvTurn[] {
    return ex.conversations.filter((t) => t.from !== 'system').map((t): ConvTurn => {
      // LLaVA puts the image first: '<image>\n' + the text without the tag.
      const v = t.value.includes('<image>') ? `<image>\n${t.value.split('<image>').join('').trim()}` : t.value;
      return [t.from === 'human' ? 'USER' : 'ASSISTANT', v];
    });
  }

  async build(ex: ConversationExample): Promise<TrainingExample> {
    const fail = (reason: string) => new DataError({ file: ex.source.file, line: ex.source.line, field: 'conversations' }, reason);
    let full: number[];
    const spans: [number, number][] = [];
    if (this.format.kind === 'chat-template') {
      const msgs = this.messages(ex);
      const render = (m: ChatMessage[], gen: boolean) => applyChatTemplate(this.tokenizer, m, { addGenerationPrompt: gen });
      const ids = async (text: string) => [...(await this.processorPrefix(text)), ...(await this.tokenize(text))];
      full = await ids(render(msgs, false));
      for (let k = 0; k < msgs.length; k++) {
        if (msgs[k]!.role !== 'assistant') continue;
        const start = (await ids(render(msgs.slice(0, k), true))).length;
        const end = (await ids(render(msgs.slice(0, k + 1), false))).length;
        spans.push([start, end]);
      }
    } else {
      const template = this.format.template;
      const turns = this.convTurns(ex);
      turns.forEach(([role], i) => {
        if (role !== (i % 2 === 0 ? 'USER' : 'ASSISTANT')) throw fail(`turn ${i} is from ${role === 'USER' ? 'human' : 'gpt'}; LLaVA conversation templates need alternating human/gpt turns`);
      });
      const bos = this.tokenizer.addsBos ? this.tokenizer.idOf('bos') : null;
      const ids = async (t: ConvTurn[]) => [...(bos === null ? [] : [bos]), ...(await this.tokenize(renderConversation(template, t)))];
      full = await ids(turns);
      for (let k = 1; k < turns.length; k += 2) {
        const start = (await ids([...turns.slice(0, k), ['ASSISTANT', null]])).length;
        const end = (await ids(turns.slice(0, k + 1))).length;
        spans.push([start, end]);
      }
    }
    if (spans.length === 0) throw fail('no assistant (gpt) turn to learn from');
    const labels = new Array<number>(full.length).fill(IGNORE_INDEX);
    for (const [start, end] of spans) for (let i = start; i < Math.min(end, full.length); i++) labels[i] = full[i]!;
    const max = this.opts.maxLength;
    const inputIds = max !== undefined && full.length > max ? full.slice(0, max) : full;
    return { id: ex.id, ...(ex.image === undefined ? {} : { image: ex.image }), inputIds, labels: labels.slice(0, inputIds.length) };
  }
}
