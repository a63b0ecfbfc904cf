// Chat templates from tokenizer_config.json rendered with @huggingface/jinja, with the variables
// transformers' apply_chat_template passes (messages, add_generation_prompt, the special tokens;
// raise_exception and strftime_now are built into @huggingface/jinja).
import { Template } from '@huggingface/jinja';
import type { TextTokenizer } from './tokenizer.ts';

export type ChatContent = string | ({ type: 'image' } | { type: 'text'; text: string })[];
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: ChatContent;
}

const compiled = new Map<string, Template>();

function compile(source: string): Template {
  let t = compiled.get(source);
  if (!t) {
    t = new Template(source);
    compiled.set(source, t);
  }
  return t;
}

/**
 * Whether a template reads message content as a list of typed parts (llava-hf style:
 * {'type': 'image'}, {'type': 'text', 'text': ...}) rather than as a string.
 */
export function templateWantsParts(source: string): boolean {
  return /\[\s*['"]type['"]\s*\]|\.type\b|selectattr\(\s*['"]type['"]/.test(source);
}

/** `<image>` markers in a string turned into typed parts, in order. */
export function toParts(text: string): ChatContent {
  const parts: ({ type: 'image' } | { type: 'text'; text: string })[] = [];
  text.split('<image>').forEach((chunk, i) => {
    if (i > 0) parts.push({ type: 'image' });
    if (chunk) parts.push({ type: 'text', text: chunk });
  });
  return parts;
}

export function applyChatTemplate(
  tokenizer: TextTokenizer, messages: readonly ChatMessage[], opts: { addGenerationPrompt?: boolean; template?: string; extra?: Record<string, unknown> } = {},
): string {
  const source = opts.template ?? tokenizer.chatTemplate;
  if (!source) throw new Error(`${tokenizer.dir}: the tokenizer has no chat template; use a LLaVA-Med conversation template (--conv-template)`);
  const wantsParts = templateWantsParts(source);
  const msgs = messages.map((m) => ({ role: m.role, content: wantsParts && typeof m.content === 'string' ? toParts(m.content) : m.content }));
  const vars: Record<string, unknown> = {
    messages: msgs,
    add_generation_prompt: opts.addGenerationPrompt ?? false,
    ...opts.extra,
  };
  for (const [k, v] of Object.entries(tokenizer.special)) if (v !== undefined) vars[`${k}_token`] = v;
  return compile(source).render(vars);
}
