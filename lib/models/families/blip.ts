// BLIP (model_type 'blip'): BlipForQuestionAnswering (VQA: vision, text encoder, text decoder)
// and BlipForConditionalGeneration (captioning / report generation: vision, text decoder), in
// transformers' key layout (vision_model.*) or Salesforce BLIP's own (visual_encoder.*, as
// BLIP's and MISS's .pth checkpoints store it). The layout is read off the checkpoint's keys.
import type { CheckpointKeys } from '../checkpoint.ts';
import { type ConfigObject, ConfigReader, ModelConfigError } from '../config.ts';

export interface BlipVisionSpec {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  patchSize: number;
  imageSize: number;
  layerNormEps: number;
  hiddenAct: string;
  attentionDropout: number;
  /** Stochastic depth rate of the last block (BLIP's ViT: drop_path_rate; transformers has none). */
  dropPath: number;
}

export interface BlipTextSpec {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  layerNormEps: number;
  hiddenAct: string;
  hiddenDropout: number;
  attentionDropout: number;
}

/**
 * The decoder's training loss. 'blip': Salesforce BLIP's (and MISS's): cross-entropy with label
 * smoothing 0.1, summed over each answer's tokens and averaged over the questions (captions:
 * averaged over tokens). 'transformers': BlipForQuestionAnswering's, a mean over tokens with
 * text_config.label_smoothing.
 */
export type BlipDecoderLoss = 'blip' | 'transformers';

export interface BlipSpec {
  family: 'blip';
  layout: 'hf' | 'original';
  task: 'vqa' | 'caption';
  vision: BlipVisionSpec;
  text: BlipTextSpec;
  tieWordEmbeddings: boolean;
  decoderLoss: BlipDecoderLoss;
  labelSmoothing: number;
  bosTokenId: number;
  padTokenId: number;
  /** [SEP]: ends answers and reports (the EOS of generation). */
  sepTokenId: number;
}

export const BLIP_ARCHITECTURES = ['BlipForQuestionAnswering', 'BlipForConditionalGeneration'] as const;

/** Salesforce BLIP's med.py hard-codes this smoothing for its decoder. */
export const BLIP_LABEL_SMOOTHING = 0.1;

function layoutOf(keys: CheckpointKeys | null, config: ConfigObject): 'hf' | 'original' {
  if (keys) {
    if (keys.hasPrefix('visual_encoder.')) return 'original';
    if (keys.hasPrefix('vision_model.')) return 'hf';
  }
  return config['medtune_layout'] === 'original' ? 'original' : 'hf';
}

export function blipSpecFromConfig(config: ConfigObject, where: string, keys: CheckpointKeys | null): BlipSpec {
  const c = new ConfigReader(config, where);
  const layout = layoutOf(keys, config);
  const archs = (config['architectures'] as string[] | undefined) ?? [];
  let task: BlipSpec['task'];
  if (archs.includes('BlipForQuestionAnswering')) task = 'vqa';
  else if (archs.includes('BlipForConditionalGeneration')) task = 'caption';
  else if (archs.length === 0 && keys) task = keys.hasPrefix('text_encoder.') ? 'vqa' : 'caption';
  else {
    throw new ModelConfigError(
      `${where}: architecture ${archs.join(', ') || '(none)'} is not supported for model_type 'blip' (supported: ${BLIP_ARCHITECTURES.join(', ')})`,
      'MEDTUNE_UNSUPPORTED_MODEL',
    );
  }
  // transformers' BlipVisionConfig / BlipTextConfig defaults for absent fields.
  const v = c.object('vision_config') ?? new ConfigReader({}, `${where}: vision_config`);
  const t = c.object('text_config') ?? new ConfigReader({}, `${where}: text_config`);
  const visionHidden = v.positiveInt('hidden_size', 768);
  const textHidden = t.positiveInt('hidden_size', 768);
  const imageSize = v.ints('image_size', [384]);
  const patchSize = v.ints('patch_size', [16]);
  if (imageSize.length > 1 && imageSize[0] !== imageSize[1]) throw new ModelConfigError(`${where}: vision_config.image_size must be square`, 'MEDTUNE_UNSUPPORTED_MODEL');
  if (task === 'vqa' && visionHidden !== textHidden && layout === 'hf') {
    throw new ModelConfigError(`${where}: BlipForQuestionAnswering needs vision and text hidden sizes to match (the decoder's cross-attention width is the vision width), got ${visionHidden} and ${textHidden}`);
  }
  const decoderLoss = c.oneOf('decoder_loss', ['blip', 'transformers'] as const, layout === 'original' ? 'blip' : 'transformers');
  return {
    family: 'blip',
    layout,
    task,
    vision: {
      hiddenSize: visionHidden,
      numLayers: v.positiveInt('num_hidden_layers', 12),
      numHeads: v.positiveInt('num_attention_heads', 12),
      intermediateSize: v.positiveInt('intermediate_size', 3072),
      patchSize: patchSize[0]!,
      imageSize: imageSize[0]!,
      layerNormEps: v.number('layer_norm_eps', 1e-5),
      hiddenAct: v.string('hidden_act', 'gelu'),
      attentionDropout: v.number('attention_dropout', 0),
      dropPath: v.number('drop_path_rate', 0),
    },
    text: {
      vocabSize: t.positiveInt('vocab_size', 30524),
      hiddenSize: textHidden,
      numLayers: t.positiveInt('num_hidden_layers', 12),
      numHeads: t.positiveInt('num_attention_heads', 8),
      intermediateSize: t.positiveInt('intermediate_size', 3072),
      maxPositions: t.positiveInt('max_position_embeddings', 512),
      layerNormEps: t.number('layer_norm_eps', 1e-12),
      hiddenAct: t.string('hidden_act', 'gelu'),
      hiddenDropout: t.number('hidden_dropout_prob', 0),
      attentionDropout: t.number('attention_probs_dropout_prob', 0),
    },
    tieWordEmbeddings: c.bool('tie_word_embeddings', t.bool('tie_word_embeddings', true)),
    decoderLoss,
    labelSmoothing: decoderLoss === 'blip' ? BLIP_LABEL_SMOOTHING : t.number('label_smoothing', 0),
    bosTokenId: t.int('bos_token_id', 30522),
    padTokenId: t.int('pad_token_id', 0),
    sepTokenId: t.int('sep_token_id', 102),
  };
}
