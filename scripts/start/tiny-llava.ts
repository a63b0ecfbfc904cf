// The embedded model of `npm start`: a tiny llava-hf LLaVA (CLIP vision tower, LLaMA language
// model, two-layer projector; ~0.4M parameters, random weights from createModel, no download)
// with everything a llava-hf checkpoint directory carries for training from dataset files:
//  - tokenizer.json: a word-level tokenizer over the bundled set's vocabulary (Whitespace
//    pre-tokenizer) with <unk>, <s>, </s>, <pad> and <image> as special tokens;
//  - tokenizer_config.json with a chat template (USER: ... ASSISTANT: ...</s>, BOS first);
//  - preprocessor_config.json: CLIPImageProcessor at the tower's 32 px.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createModel } from '../../lib/models/index.ts';

export const SPECIAL_TOKENS = ['<unk>', '<s>', '</s>', '<pad>', '<image>'] as const;
const IMAGE_SIZE = 32;
const PATCH = 8;

export const CHAT_TEMPLATE = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ 'USER: ' + message['content'] + ' ' }}"
  + "{% elif message['role'] == 'assistant' %}{{ 'ASSISTANT: ' + message['content'] + eos_token }}{% endif %}{% endfor %}"
  + "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

/** The pieces tokenizers' Whitespace pre-tokenizer cuts text into (\w+|[^\w\s]+). */
export function words(text: string): string[] {
  return text.match(/\w+|[^\w\s]+/gu) ?? [];
}

/** tokenizer.json of a WordLevel tokenizer: the special tokens first (ids 0-4), then the words in order of appearance. */
export function wordLevelTokenizer(texts: readonly string[]): { json: Record<string, unknown>; vocab: Map<string, number> } {
  const vocab = new Map<string, number>(SPECIAL_TOKENS.map((t, i) => [t, i]));
  for (const text of texts) for (const w of words(text)) if (!vocab.has(w)) vocab.set(w, vocab.size);
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: Object.fromEntries(vocab), unk_token: '<unk>' },
  };
  return { json, vocab };
}

export function tinyLlavaConfig(vocabSize: number): Record<string, unknown> {
  return {
    model_type: 'llava',
    architectures: ['LlavaForConditionalGeneration'],
    image_token_index: SPECIAL_TOKENS.indexOf('<image>'),
    image_seq_length: (IMAGE_SIZE / PATCH) ** 2,
    vision_feature_layer: -2,
    vision_feature_select_strategy: 'default',
    projector_hidden_act: 'gelu',
    tie_word_embeddings: false,
    vision_config: {
      model_type: 'clip_vision_model', hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4,
      image_size: IMAGE_SIZE, patch_size: PATCH, num_channels: 3, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5,
    },
    text_config: {
      model_type: 'llama', vocab_size: vocabSize, hidden_size: 128, intermediate_size: 256, num_hidden_layers: 2, num_attention_heads: 4,
      num_key_value_heads: 2, max_position_embeddings: 128, rms_norm_eps: 1e-6, hidden_act: 'silu', tie_word_embeddings: false,
      bos_token_id: 1, eos_token_id: 2, pad_token_id: 3,
    },
  };
}

/** Writes the model directory: config.json + model.safetensors, tokenizer and image processor files. */
export async function writeTinyLlava(dir: string, texts: readonly string[], seed = 0): Promise<void> {
  mkdirSync(dir, { recursive: true });
  // The template's own words come first, then the data's.
  const { json, vocab } = wordLevelTokenizer(['USER: ASSISTANT:', ...texts]);
  const model = await createModel(tinyLlavaConfig(vocab.size), { seed });
  try {
    await model.save(dir);
  } finally {
    model.dispose();
  }
  writeFileSync(join(dir, 'tokenizer.json'), `${JSON.stringify(json, null, 1)}\n`);
  writeFileSync(join(dir, 'tokenizer_config.json'), `${JSON.stringify({
    tokenizer_class: 'PreTrainedTokenizerFast', bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: '<pad>',
    padding_side: 'right', model_max_length: 128, chat_template: CHAT_TEMPLATE,
  }, null, 1)}\n`);
  writeFileSync(join(dir, 'preprocessor_config.json'), `${JSON.stringify({
    image_processor_type: 'CLIPImageProcessor', do_resize: true, size: { shortest_edge: IMAGE_SIZE }, resample: 3,
    do_center_crop: true, crop_size: { height: IMAGE_SIZE, width: IMAGE_SIZE }, do_rescale: true, rescale_factor: 1 / 255,
    do_normalize: true, image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711], do_convert_rgb: true,
  }, null, 1)}\n`);
}
