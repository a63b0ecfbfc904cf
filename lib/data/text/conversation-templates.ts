// LLaVA-Med's conversation templates (llava/conversation.py) for checkpoints whose tokenizer has
// no chat template: 'vicuna_v1' (LLaVA-Med v1.5 LLaMA/Vicuna, separator style TWO) and
// 'mistral_instruct' (LLaVA-Med v1.5 Mistral, separator style LLAMA_2 with an empty system).

export const CONVERSATION_TEMPLATES = ['vicuna_v1', 'mistral_instruct'] as const;
export type ConversationTemplateName = (typeof CONVERSATION_TEMPLATES)[number];

const VICUNA_SYSTEM = 'A chat between a curious user and an artificial intelligence assistant. '
  + "The assistant gives helpful, detailed, and polite answers to the user's questions.";

/** One round's role and message; a null message is the open slot for the model's reply. */
export type ConvTurn = [role: 'USER' | 'ASSISTANT', message: string | null];

/** Conversation.get_prompt() for the named template. */
export function renderConversation(template: ConversationTemplateName, turns: readonly ConvTurn[]): string {
  if (template === 'vicuna_v1') {
    const seps = [' ', '</s>'];
    let ret = VICUNA_SYSTEM + seps[0];
    turns.forEach(([role, msg], i) => {
      ret += msg ? `${role}: ${msg.trim()}${seps[i % 2]}` : `${role}:`;
    });
    return ret.trim();
  }
  // LLAMA_2 style with system '' and sep '', sep2 '</s>'; the empty system adds nothing.
  let ret = '';
  turns.forEach(([role, msg], i) => {
    if (i === 0 && (!msg || role !== 'USER')) throw new Error('mistral_instruct: the first message must be a non-empty user message');
    if (!msg) return;
    ret += i % 2 === 0 ? `[INST] ${msg} [/INST]` : ` ${msg} </s>`;
  });
  return ret;
}

/** The template LLaVA-Med uses for a model family when the checkpoint names none. */
export function defaultConversationTemplate(modelType: string | undefined): ConversationTemplateName {
  return modelType && /mistral/i.test(modelType) ? 'mistral_instruct' : 'vicuna_v1';
}
