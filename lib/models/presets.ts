// Named architectures for checkpoints that come without a config.json: the torch.save files of
// MAE / MRM chest X-ray foundation models (timm ViT state dicts) and of BLIP / MISS. Each preset
// is the config a directory would hold, in the vocabulary its family reads (timm's for ViT,
// transformers' BlipConfig for BLIP); `configOverrides` changes single fields (num_classes,
// image_size ...).
import { type ConfigObject, ModelConfigError, readConfigFile } from './config.ts';

export interface Preset {
  description: string;
  config: ConfigObject;
}

function vitPreset(size: string, patch: number, description: string): Preset {
  // MAE / MED-PEFT fine-tuning: global-average pooling of the patch tokens, then fc_norm.
  return { description, config: { architecture: `vit_${size}_patch${patch}_224`, num_classes: 0, global_pool: 'avg' } };
}

// Salesforce BLIP's configs/med_config.json (BERT-base with cross-attention, 30524 tokens with
// [DEC] and [ENC], dropout 0.1) and its ViT-B/16 (LayerNorm eps 1e-6).
const BLIP_TEXT_BASE: ConfigObject = {
  vocab_size: 30524, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072,
  max_position_embeddings: 512, hidden_act: 'gelu', layer_norm_eps: 1e-12, hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1,
  bos_token_id: 30522, pad_token_id: 0, sep_token_id: 102, eos_token_id: 102,
};

function blipVision(imageSize: number, dropPath: number): ConfigObject {
  return {
    hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072, image_size: imageSize, patch_size: 16,
    hidden_act: 'gelu', layer_norm_eps: 1e-6, attention_dropout: 0, drop_path_rate: dropPath,
  };
}

export const PRESETS: Record<string, Preset> = {
  'vit-tiny-patch16': vitPreset('tiny', 16, 'timm ViT-Ti/16, 224 px, global-average pooling + fc_norm (MAE fine-tuning)'),
  'vit-small-patch16': vitPreset('small', 16, 'timm ViT-S/16, 224 px, global-average pooling + fc_norm (MAE fine-tuning)'),
  'vit-base-patch16': vitPreset('base', 16, 'timm ViT-B/16, 224 px, global-average pooling + fc_norm (MAE / MRM fine-tuning, MED-PEFT)'),
  'vit-large-patch16': vitPreset('large', 16, 'timm ViT-L/16, 224 px, global-average pooling + fc_norm (MAE fine-tuning)'),
  'blip-vqa-base': {
    description: "Salesforce BLIP's VQA model with ViT-B/16 at 480 px (BLIP_VQA, MISS), BLIP's decoder loss",
    config: {
      model_type: 'blip', architectures: ['BlipForQuestionAnswering'], decoder_loss: 'blip', tie_word_embeddings: true,
      vision_config: blipVision(480, 0.1), text_config: BLIP_TEXT_BASE,
    },
  },
  'blip-caption-base': {
    description: "Salesforce BLIP's captioning model with ViT-B/16 at 384 px (BLIP_Decoder), BLIP's decoder loss",
    config: {
      model_type: 'blip', architectures: ['BlipForConditionalGeneration'], decoder_loss: 'blip', tie_word_embeddings: true,
      vision_config: blipVision(384, 0), text_config: BLIP_TEXT_BASE,
    },
  },
};

function isObject(v: unknown): v is ConfigObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `base` with `overrides` merged in, nested objects (vision_config, model_args ...) field by field. */
export function mergeConfig(base: ConfigObject, overrides: ConfigObject | undefined): ConfigObject {
  if (!overrides) return structuredClone(base);
  const out: ConfigObject = structuredClone(base);
  for (const [k, v] of Object.entries(overrides)) out[k] = isObject(v) && isObject(out[k]) ? mergeConfig(out[k] as ConfigObject, v) : structuredClone(v);
  return out;
}

/** A preset name, a config.json path, or a config object, as a config object (a copy). */
export function resolveConfigArgument(config: string | ConfigObject): { config: ConfigObject; source: string } {
  if (typeof config !== 'string') return { config: structuredClone(config), source: 'the config object' };
  const preset = PRESETS[config];
  if (preset) return { config: structuredClone(preset.config), source: `preset '${config}'` };
  if (/\.json$/i.test(config)) return { config: readConfigFile(config), source: config };
  throw new ModelConfigError(`'${config}' is neither a preset (${Object.keys(PRESETS).join(', ')}) nor a .json config file`);
}
