// CLIP vision towers: CLIPVisionModel configs (model_type 'clip_vision_model'), the vision half
// of CLIPModel configs (model_type 'clip'), LLaVA's vision_config, and the OpenAI towers LLaVA
// checkpoints name in mm_vision_tower.
import type { CheckpointKeys } from '../checkpoint.ts';
import { type ConfigObject, ConfigReader, ModelConfigError } from '../config.ts';

export interface ClipVisionSpec {
  family: 'clip_vision';
  /** Where the tower's keys live: '' (transformers 5), 'vision_model' (4.x), 'vision_tower.vision_model' (llava-hf) ... */
  prefix: string;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  patchSize: number;
  imageSize: number;
  numChannels: number;
  layerNormEps: number;
  hiddenAct: string;
  attentionDropout: number;
}

/** The vision part of a CLIP config: vision_config of a CLIPModel config, or the config itself. */
export function clipVisionConfig(config: ConfigObject, where: string): { config: ConfigObject; where: string } {
  if (config['model_type'] === 'clip') {
    const vision = config['vision_config'];
    if (!vision || typeof vision !== 'object') throw new ModelConfigError(`${where}: a 'clip' config needs "vision_config"`);
    return { config: vision as ConfigObject, where: `${where}: vision_config` };
  }
  return { config, where };
}

export function clipVisionSpec(config: ConfigObject, where: string, prefix: string): ClipVisionSpec {
  const c = new ConfigReader(config, where);
  const modelType = config['model_type'];
  if (modelType !== undefined && modelType !== 'clip_vision_model') {
    throw new ModelConfigError(`${where}: vision tower model_type '${String(modelType)}' is not supported (supported: clip_vision_model)`, 'MEDTUNE_UNSUPPORTED_MODEL');
  }
  // CLIPVisionConfig defaults.
  return {
    family: 'clip_vision',
    prefix,
    hiddenSize: c.positiveInt('hidden_size', 768),
    numLayers: c.positiveInt('num_hidden_layers', 12),
    numHeads: c.positiveInt('num_attention_heads', 12),
    intermediateSize: c.positiveInt('intermediate_size', 3072),
    patchSize: c.positiveInt('patch_size', 32),
    imageSize: c.positiveInt('image_size', 224),
    numChannels: c.positiveInt('num_channels', 3),
    layerNormEps: c.number('layer_norm_eps', 1e-5),
    hiddenAct: c.string('hidden_act', 'quick_gelu'),
    attentionDropout: c.number('attention_dropout', 0),
  };
}

/** CLIPVisionModel / CLIPModel checkpoints: keys under 'vision_model.' (4.x) or at the top (5.x). */
export function clipVisionModelSpec(config: ConfigObject, where: string, keys: CheckpointKeys | null): ClipVisionSpec {
  const vision = clipVisionConfig(config, where);
  const prefix = keys ? (keys.hasPrefix('vision_model.') ? 'vision_model' : '') : 'vision_model';
  return clipVisionSpec(vision.config, vision.where, prefix);
}

/** Keys of a CLIPModel checkpoint that a vision tower does not use. */
export const CLIP_TEXT_PREFIXES = ['text_model.', 'text_projection.', 'visual_projection.', 'logit_scale'];

// The OpenAI towers LLaVA and LLaVA-Med name in mm_vision_tower (their CLIPVisionConfig values).
export const OPENAI_CLIP_TOWERS: Record<string, ConfigObject> = {
  'openai/clip-vit-large-patch14-336': { model_type: 'clip_vision_model', hidden_size: 1024, intermediate_size: 4096, num_hidden_layers: 24, num_attention_heads: 16, patch_size: 14, image_size: 336, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 },
  'openai/clip-vit-large-patch14': { model_type: 'clip_vision_model', hidden_size: 1024, intermediate_size: 4096, num_hidden_layers: 24, num_attention_heads: 16, patch_size: 14, image_size: 224, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 },
  'openai/clip-vit-base-patch16': { model_type: 'clip_vision_model', hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, patch_size: 16, image_size: 224, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 },
  'openai/clip-vit-base-patch32': { model_type: 'clip_vision_model', hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, patch_size: 32, image_size: 224, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 },
};
