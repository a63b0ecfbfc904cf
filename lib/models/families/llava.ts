// LLaVA configs in both checkpoint layouts.
//  - llava-hf (model_type 'llava', LlavaForConditionalGeneration): text_config, vision_config,
//    image_token_index, vision_feature_layer, vision_feature_select_strategy, projector_hidden_act.
//    Keys in any of the forms transformers has written: language_model.model.* (4.x and 5.x on
//    disk) or model.language_model.* (5.x in memory), language_model.lm_head or lm_head,
//    vision_tower.vision_model.* (4.x) or vision_tower.* (5.x), multi_modal_projector.* with or
//    without model.
//  - original LLaVA / LLaVA-Med (LlavaLlamaForCausalLM, LlavaMistralForCausalLM, model_type
//    'llava_llama' / 'llava_mistral' / 'llava' with mm_* fields): model.layers.*, lm_head,
//    model.mm_projector.N, model.vision_tower.vision_tower.vision_model.* or a separate CLIP
//    directory (mm_vision_tower, or the visionTower option).
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { CheckpointKeys, findCheckpointFiles } from '../checkpoint.ts';
import { type ConfigObject, ConfigReader, ModelConfigError, readConfigFile } from '../config.ts';
import { CLIP_TEXT_PREFIXES, type ClipVisionSpec, OPENAI_CLIP_TOWERS, clipVisionConfig, clipVisionSpec } from './clip.ts';
import type { CheckpointSource, ResolveContext, ResolvedModel } from './index.ts';
import { type LlamaSpec, llamaSpec } from './llama.ts';

export interface ProjectorSpec {
  /** Where the projector's Linears live ('multi_modal_projector', 'model.mm_projector'). */
  prefix: string;
  /** Comma-separated Linear names under the prefix ('linear_1,linear_2'; '0,2' for mlp2x_gelu; '' for one Linear). */
  names: string;
  act: string;
  bias: boolean;
  inDim: number;
  outDim: number;
}

export interface LlavaSpec {
  family: 'llava';
  layout: 'hf' | 'original';
  vision: ClipVisionSpec;
  language: LlamaSpec;
  projector: ProjectorSpec;
  /** The image token: image_token_index for llava-hf, IMAGE_TOKEN_INDEX (-200) for LLaVA. */
  imageTokenIndex: number;
  /** hidden_states indices of the vision tower whose features are used (concatenated). */
  visionFeatureLayers: number[];
  /** Drop the CLS token ('default' / 'patch') or keep it ('full' / 'cls_patch'). */
  dropCls: boolean;
  /** Image features per image: the image tokens per image a llava-hf prompt holds, or what one -200 placeholder expands to. */
  imageSeqLength: number;
  /** Original layout: re-padding side and truncation after images expand (tokenizer_padding_side, tokenizer_model_max_length). */
  paddingSide: 'right' | 'left';
  modelMaxLength: number;
  eosTokenIds: number[];
  padTokenId: number | null;
}

export const ORIGINAL_LLAVA_ARCHITECTURES = ['LlavaLlamaForCausalLM', 'LlavaMistralForCausalLM'] as const;

export function isOriginalLlava(config: ConfigObject): boolean {
  const archs = (config['architectures'] as string[] | undefined) ?? [];
  if (archs.some((a) => (ORIGINAL_LLAVA_ARCHITECTURES as readonly string[]).includes(a))) return true;
  return config['mm_vision_tower'] !== undefined && config['vision_config'] === undefined;
}

function featuresPerImage(vision: ClipVisionSpec, dropCls: boolean): number {
  return (vision.imageSize / vision.patchSize) ** 2 + (dropCls ? 0 : 1);
}

/** The first prefix (with trailing dot) some key starts with, without the dot; `fallback` when none (or no keys). */
function pick(keys: CheckpointKeys | null, prefixes: string[], fallback: string): string {
  if (!keys) return fallback;
  const found = keys.firstPrefix(prefixes.map((p) => `${p}.`));
  return found ? found.slice(0, -1) : fallback;
}

export function llavaHfSpec(config: ConfigObject, where: string, ctx: ResolveContext): ResolvedModel {
  const c = new ConfigReader(config, where);
  const keys = ctx.keys;
  const text = (config['text_config'] as ConfigObject | undefined) ?? {};
  const textType = text['model_type'] ?? 'llama';
  if (textType !== 'llama' && textType !== 'mistral') {
    throw new ModelConfigError(`${where}: text_config model_type '${String(textType)}' is not supported (supported: llama, mistral)`, 'MEDTUNE_UNSUPPORTED_MODEL');
  }
  const visionConfig = (config['vision_config'] as ConfigObject | undefined) ?? { ...OPENAI_CLIP_TOWERS['openai/clip-vit-large-patch14-336'], vocab_size: 32000 };
  const decoderPrefix = pick(keys, ['language_model.model', 'model.language_model'], 'language_model.model');
  // The head follows the decoder's form unless the checkpoint says otherwise (a tied head has no key).
  const lmHead = keys?.has('language_model.lm_head.weight') ? 'language_model.lm_head'
    : keys?.has('lm_head.weight') || decoderPrefix === 'model.language_model' ? 'lm_head' : 'language_model.lm_head';
  const visionPrefix = pick(keys, ['vision_tower.vision_model', 'model.vision_tower.vision_model', 'vision_tower', 'model.vision_tower'], 'vision_tower.vision_model');
  const projectorPrefix = pick(keys, ['multi_modal_projector', 'model.multi_modal_projector'], 'multi_modal_projector');
  const language = llamaSpec({ model_type: 'llama', ...text }, `${where}: text_config`, { decoderPrefix, lmHead }, c.bool('tie_word_embeddings', false));
  const vision = clipVisionSpec(visionConfig, `${where}: vision_config`, visionPrefix);
  const layers = c.ints('vision_feature_layer', [-2]);
  const strategy = c.oneOf('vision_feature_select_strategy', ['default', 'full'] as const, 'default');
  const imageToken = c.has('image_token_index') ? c.int('image_token_index') : c.int('image_token_id', 32000);
  const spec: LlavaSpec = {
    family: 'llava',
    layout: 'hf',
    vision,
    language,
    projector: {
      prefix: projectorPrefix,
      names: 'linear_1,linear_2',
      act: c.string('projector_hidden_act', 'gelu'),
      bias: c.bool('multimodal_projector_bias', true),
      inDim: vision.hiddenSize * layers.length,
      outDim: language.hiddenSize,
    },
    imageTokenIndex: imageToken,
    visionFeatureLayers: layers,
    dropCls: strategy === 'default',
    // What the model consumes (config's image_seq_length is a processor hint and may be stale).
    imageSeqLength: featuresPerImage(vision, strategy === 'default'),
    paddingSide: 'left',
    modelMaxLength: 0,
    eosTokenIds: language.eosTokenIds,
    padTokenId: typeof config['pad_token_id'] === 'number' ? config['pad_token_id'] : language.padTokenId,
  };
  return { spec, architecture: 'LlavaForConditionalGeneration', extraSources: [], ignoredPrefixes: [] };
}

const TOWER_PREFIX = 'model.vision_tower.vision_tower';

/** Where the original layout's CLIP tower config (and maybe weights) come from. */
function findTower(config: ConfigObject, where: string, ctx: ResolveContext): { config: ConfigObject; where: string; dir: string | null; relative: string | null } {
  const name = ctx.visionTower ?? (typeof config['mm_vision_tower'] === 'string' ? config['mm_vision_tower'] : null);
  if (!name) throw new ModelConfigError(`${where}: an original LLaVA config needs "mm_vision_tower" (or pass { visionTower: DIR })`);
  const candidates = isAbsolute(name) ? [name] : [...(ctx.dir ? [join(ctx.dir, name)] : []), resolve(name)];
  const dir = candidates.find((d) => existsSync(join(d, 'config.json')));
  if (dir) {
    const vision = clipVisionConfig(readConfigFile(join(dir, 'config.json')), join(dir, 'config.json'));
    const relative = !isAbsolute(name) && ctx.dir && dir === join(ctx.dir, name) ? name : null;
    return { ...vision, dir, relative };
  }
  const preset = OPENAI_CLIP_TOWERS[name];
  if (preset) return { config: preset, where: `mm_vision_tower '${name}'`, dir: null, relative: null };
  throw new ModelConfigError(
    `${where}: mm_vision_tower '${name}' is neither a local CLIP directory (looked in ${candidates.join(', ')}) nor a known OpenAI tower ` +
      `(${Object.keys(OPENAI_CLIP_TOWERS).join(', ')}); pass { visionTower: DIR }`,
    'MEDTUNE_UNSUPPORTED_MODEL',
  );
}

export function llavaOriginalSpec(config: ConfigObject, where: string, ctx: ResolveContext): ResolvedModel {
  const c = new ConfigReader(config, where);
  const archs = (config['architectures'] as string[] | undefined) ?? [];
  const mistral = config['model_type'] === 'llava_mistral' || archs.includes('LlavaMistralForCausalLM');
  const language = llamaSpec({ ...config, model_type: mistral ? 'mistral' : 'llama' }, where, { decoderPrefix: 'model', lmHead: 'lm_head' });

  const tower = findTower(config, where, ctx);
  const vision = clipVisionSpec(tower.config, tower.where, `${TOWER_PREFIX}.vision_model`);
  const extraSources: CheckpointSource[] = [];
  const ignoredPrefixes: string[] = [];
  const inCheckpoint = !ctx.keys || ctx.keys.hasPrefix(`${TOWER_PREFIX}.vision_model.`);
  if (!inCheckpoint) {
    if (!tower.dir) {
      throw new ModelConfigError(`${where}: the checkpoint has no vision tower weights (${TOWER_PREFIX}.vision_model.*) and mm_vision_tower is not a local CLIP directory; pass { visionTower: DIR }`);
    }
    const clip = findCheckpointFiles(tower.dir);
    // 4.x CLIP checkpoints keep the tower under vision_model.*, 5.x CLIPVisionModel ones at the top.
    const prefix = clip.keys.hasPrefix('vision_model.') ? `${TOWER_PREFIX}.` : `${TOWER_PREFIX}.vision_model.`;
    for (const path of clip.files) extraSources.push({ path, prefix });
    ignoredPrefixes.push(...CLIP_TEXT_PREFIXES.map((p) => `${TOWER_PREFIX}.${p}`));
  }

  const projectorType = c.string('mm_projector_type', 'linear');
  const mlp = /^mlp(\d+)x_gelu$/.exec(projectorType);
  if (projectorType !== 'linear' && !mlp) {
    throw new ModelConfigError(`${where}: mm_projector_type '${projectorType}' is not supported (supported: linear, mlp<N>x_gelu)`, 'MEDTUNE_UNSUPPORTED_MODEL');
  }
  const depth = mlp ? Number(mlp[1]) : 1;
  const names = projectorType === 'linear' ? '' : Array.from({ length: depth }, (_, i) => String(2 * i)).join(',');
  const feature = c.oneOf('mm_vision_select_feature', ['patch', 'cls_patch'] as const, 'patch');
  const spec: LlavaSpec = {
    family: 'llava',
    layout: 'original',
    vision,
    language,
    projector: { prefix: 'model.mm_projector', names, act: 'gelu', bias: true, inDim: c.positiveInt('mm_hidden_size', vision.hiddenSize), outDim: language.hiddenSize },
    imageTokenIndex: -200,
    visionFeatureLayers: [c.int('mm_vision_select_layer', -2)],
    dropCls: feature === 'patch',
    imageSeqLength: featuresPerImage(vision, feature === 'patch'),
    paddingSide: c.oneOf('tokenizer_padding_side', ['right', 'left'] as const, 'right'),
    modelMaxLength: c.int('tokenizer_model_max_length', 0),
    eosTokenIds: language.eosTokenIds,
    padTokenId: language.padTokenId,
  };
  // A tower config inside the model directory travels with it when the model is saved elsewhere.
  const companions = tower.relative ? [{ relativePath: join(tower.relative, 'config.json'), source: join(tower.dir!, 'config.json') }] : [];
  return { spec, architecture: mistral ? 'LlavaMistralForCausalLM' : 'LlavaLlamaForCausalLM', extraSources, ignoredPrefixes, companions };
}
