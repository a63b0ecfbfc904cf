// How a LLaVA checkpoint wants its training inputs prepared, read off the checkpoint:
//  - prompt format: llava-hf checkpoints are trained through their processor's chat template
//    (tokenizer_config.json, chat_template.json / .jinja); original LLaVA / LLaVA-Med checkpoints
//    through LLaVA-Med's conversation templates (its train.py and model_vqa.py format with
//    conv_mode, never with the tokenizer's template, even when the Mistral tokenizer ships one):
//    mistral_instruct for Mistral language models, vicuna_v1 otherwise. `--conv-template`
//    overrides either way ('chat' = the tokenizer's template).
//  - image tokens: llava-hf repeats its image token once per image feature; the original layout
//    splices the features at LLaVA's -200 placeholder.
//  - pixels: the checkpoint's preprocessor_config.json (CLIP); original checkpoints may keep it
//    with their vision tower (mm_vision_tower) and pad to a square when image_aspect_ratio is 'pad'.
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parseJson } from '../data/json-source.ts';
import { loadPreprocessor, preprocessorFromConfig, type ImagePreprocessor } from '../data/image/preprocess.ts';
import { CONVERSATION_TEMPLATES, defaultConversationTemplate, type ConversationTemplateName } from '../data/text/conversation-templates.ts';
import type { TextTokenizer } from '../data/text/tokenizer.ts';
import { LLAVA_IMAGE_TOKEN_INDEX, type ImageTokens, type PromptFormat } from '../data/text/vlm-examples.ts';
import type { LlavaSpec } from '../models/families/llava.ts';
import type { Model } from '../models/model.ts';

export const CONV_TEMPLATE_CHOICES = ['chat', ...CONVERSATION_TEMPLATES] as const;
export type ConvTemplateChoice = (typeof CONV_TEMPLATE_CHOICES)[number];

export function llavaSpecOf(model: Model): LlavaSpec {
  if (model.spec.family !== 'llava') throw new Error(`the model is ${model.architecture}, not a LLaVA model`);
  return model.spec;
}

/** The language model's type, for LLaVA-Med's default conversation template. */
function languageModelType(model: Model, spec: LlavaSpec): string {
  if (spec.layout === 'hf') return String((model.config['text_config'] as { model_type?: string } | undefined)?.model_type ?? 'llama');
  return /mistral/i.test(`${String(model.config['model_type'] ?? '')} ${model.architecture}`) ? 'mistral' : 'llama';
}

export function llavaPromptFormat(model: Model, tokenizer: TextTokenizer, choice?: ConvTemplateChoice | null): PromptFormat {
  const spec = llavaSpecOf(model);
  if (choice === 'chat') {
    if (!tokenizer.chatTemplate) throw new Error(`--conv-template chat: ${tokenizer.dir} has no chat template (tokenizer_config.json, chat_template.json, chat_template.jinja)`);
    return { kind: 'chat-template' };
  }
  if (choice) return { kind: 'conversation', template: choice as ConversationTemplateName };
  if (spec.layout === 'hf' && tokenizer.chatTemplate) return { kind: 'chat-template' };
  return { kind: 'conversation', template: defaultConversationTemplate(languageModelType(model, spec)) };
}

export function llavaImageTokens(model: Model, tokenizer: TextTokenizer): ImageTokens {
  const spec = llavaSpecOf(model);
  if (spec.layout === 'original') return { kind: 'placeholder', id: LLAVA_IMAGE_TOKEN_INDEX };
  const token = tokenizer.idToToken(spec.imageTokenIndex);
  if (token === null) throw new Error(`${tokenizer.dir}: the model's image token id ${spec.imageTokenIndex} (config.json image_token_index) is not in the tokenizer's vocabulary; is this the model's tokenizer?`);
  // The model's feature count, not config.json's image_seq_length (a processor hint that may be stale).
  return { kind: 'expand', token, tokenId: spec.imageTokenIndex, count: spec.imageSeqLength };
}

function readObject(file: string): Record<string, unknown> {
  const v = parseJson(readFileSync(file, 'utf8'), file);
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${file}: expected a JSON object`);
  return v as Record<string, unknown>;
}

/** Folders that may hold the image processor's config, in order. */
function processorDirs(model: Model, spec: LlavaSpec, modelDir: string | null): string[] {
  const dirs = modelDir ? [modelDir] : [];
  const tower = model.config['mm_vision_tower'];
  if (spec.layout === 'original' && typeof tower === 'string') dirs.push(isAbsolute(tower) ? tower : modelDir ? join(modelDir, tower) : tower);
  return dirs;
}

export interface ResolvedPreprocessor {
  preprocessor: ImagePreprocessor;
  /** Where it came from, for the run's description. */
  source: string;
}

export function llavaPreprocessor(model: Model, modelDir: string | null): ResolvedPreprocessor {
  const spec = llavaSpecOf(model);
  const aspect = spec.layout === 'original' && model.config['image_aspect_ratio'] === 'pad' ? 'pad' : 'none';
  let found: ResolvedPreprocessor | null = null;
  for (const dir of processorDirs(model, spec, modelDir)) {
    const file = join(dir, 'preprocessor_config.json');
    if (existsSync(file)) {
      found = { preprocessor: loadPreprocessor(file, { aspect }), source: file };
      break;
    }
    // transformers 5 may save the image processor inside processor_config.json.
    const processorFile = join(dir, 'processor_config.json');
    const inner = existsSync(processorFile) ? readObject(processorFile)['image_processor'] : undefined;
    if (inner && typeof inner === 'object') {
      found = { preprocessor: preprocessorFromConfig(inner as Record<string, unknown>, processorFile, { aspect }), source: processorFile };
      break;
    }
  }
  const size = spec.vision.imageSize;
  // OpenAI's CLIP processors are CLIPImageProcessor's defaults at the tower's size, so a
  // checkpoint without the file (a hub tower name) gets exactly those.
  found ??= {
    preprocessor: preprocessorFromConfig({ image_processor_type: 'CLIPImageProcessor', size: { shortest_edge: size }, crop_size: { height: size, width: size } }, 'CLIP defaults', { aspect }),
    source: `CLIPImageProcessor defaults at ${size} px (no preprocessor_config.json found)`,
  };
  const p = found.preprocessor;
  const out = p.doCenterCrop ? p.cropSize : 'shortestEdge' in p.size ? null : p.size;
  if (!out || out.height !== size || out.width !== size) {
    throw new Error(`${found.source}: makes ${out ? `${out.width}x${out.height}` : 'non-square'} images, but the model's vision tower takes ${size}x${size}`);
  }
  return found;
}
