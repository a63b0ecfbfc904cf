// Vision transformers: HF ViT configs (model_type 'vit') and timm VisionTransformer configs
// (the hub's timm config.json: "architecture": "vit_base_patch16_224..." with optional
// "model_args"), as used by MAE-style chest X-ray foundation models.
import type { CheckpointKeys } from '../checkpoint.ts';
import { type ConfigObject, ConfigReader, ModelConfigError } from '../config.ts';

export interface VitSpec {
  family: 'vit';
  layout: 'hf' | 'timm';
  /** HF only: 'vit' for ViTForImageClassification checkpoints, '' for ViTModel ones. */
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
  qkvBias: boolean;
  /** 'cls' (token), or a global pool over the patch tokens. */
  pooling: 'cls' | 'avg' | 'max' | 'avgmax';
  /** 'norm' before pooling, 'fc_norm' after it (MAE fine-tuning), or none. */
  finalNorm: 'norm' | 'fc_norm' | 'none';
  classToken: boolean;
  noEmbedClass: boolean;
  layerScale: boolean;
  preNorm: boolean;
  /** ViTModel's pooler (dense + tanh on the CLS token), reported as pooler_output. */
  hfPooler: boolean;
  poolerAct: string;
  poolerOutputSize: number;
  /** 0: no classification head. */
  numLabels: number;
  problemType: '' | 'multi_label_classification' | 'single_label_classification' | 'regression';
  hiddenDropout: number;
  attentionDropout: number;
  dropPath: number;
  headDropout: number;
}

const PROBLEM_TYPES = ['', 'multi_label_classification', 'single_label_classification', 'regression'] as const;

function problemType(c: ConfigReader): VitSpec['problemType'] {
  return c.has('problem_type') ? c.oneOf('problem_type', PROBLEM_TYPES, '') : '';
}

export const VIT_ARCHITECTURES = ['ViTForImageClassification', 'ViTModel'] as const;

/** HF ViT. `keys` (when loading) decides the 'vit.' prefix and whether ViTModel's pooler exists. */
export function vitSpecFromHf(config: ConfigObject, where: string, keys: CheckpointKeys | null): VitSpec {
  const c = new ConfigReader(config, where);
  const archs = (config['architectures'] as string[] | undefined) ?? ['ViTForImageClassification'];
  const arch = archs.find((a) => (VIT_ARCHITECTURES as readonly string[]).includes(a));
  if (!arch) {
    throw new ModelConfigError(`${where}: architecture ${archs.join(', ')} is not supported for model_type 'vit' (supported: ${VIT_ARCHITECTURES.join(', ')})`, 'MEDTUNE_UNSUPPORTED_MODEL');
  }
  const classifier = arch === 'ViTForImageClassification';
  const prefix = keys ? (keys.hasPrefix('vit.') ? 'vit' : '') : classifier ? 'vit' : '';
  const hidden = c.positiveInt('hidden_size', 768);
  return {
    family: 'vit',
    layout: 'hf',
    prefix,
    hiddenSize: hidden,
    numLayers: c.positiveInt('num_hidden_layers', 12),
    numHeads: c.positiveInt('num_attention_heads', 12),
    intermediateSize: c.positiveInt('intermediate_size', 3072),
    patchSize: c.positiveInt('patch_size', 16),
    imageSize: c.positiveInt('image_size', 224),
    numChannels: c.positiveInt('num_channels', 3),
    layerNormEps: c.number('layer_norm_eps', 1e-12),
    hiddenAct: c.string('hidden_act', 'gelu'),
    qkvBias: c.bool('qkv_bias', true),
    pooling: 'cls',
    finalNorm: 'norm',
    classToken: true,
    noEmbedClass: false,
    layerScale: false,
    preNorm: false,
    hfPooler: !classifier && (keys ? keys.has(`${prefix ? `${prefix}.` : ''}pooler.dense.weight`) : true),
    poolerAct: c.string('pooler_act', 'tanh'),
    poolerOutputSize: c.positiveInt('pooler_output_size', hidden),
    numLabels: classifier ? c.numLabels(2) : 0,
    problemType: problemType(c),
    hiddenDropout: c.number('hidden_dropout_prob', 0),
    attentionDropout: c.number('attention_probs_dropout_prob', 0),
    dropPath: 0,
    headDropout: 0,
  };
}

// timm's model sizes (vision_transformer.py's registered variants).
const TIMM_SIZES: Record<string, { embed_dim: number; depth: number; num_heads: number }> = {
  tiny: { embed_dim: 192, depth: 12, num_heads: 3 },
  small: { embed_dim: 384, depth: 12, num_heads: 6 },
  base: { embed_dim: 768, depth: 12, num_heads: 12 },
  large: { embed_dim: 1024, depth: 24, num_heads: 16 },
  huge: { embed_dim: 1280, depth: 32, num_heads: 16 },
};

export function isTimmVitConfig(config: ConfigObject): boolean {
  const arch = config['architecture'];
  return typeof arch === 'string' && arch.startsWith('vit_');
}

/** A timm VisionTransformer from the hub's timm config.json ("architecture" + "model_args"). */
export function vitSpecFromTimm(config: ConfigObject, where: string): VitSpec {
  const arch = String(config['architecture']);
  const m = /^vit_(tiny|small|base|large|huge)_patch(\d+)_(?:[a-z0-9]+_)*?(\d+)(?:\.|$)/.exec(arch) ?? /^vit_(tiny|small|base|large|huge)_patch(\d+)()/.exec(arch);
  if (!m) {
    throw new ModelConfigError(
      `${where}: timm architecture '${arch}' is not supported (supported: vit_{tiny,small,base,large,huge}_patch<N>_<size>, with "model_args" for anything else)`,
      'MEDTUNE_UNSUPPORTED_MODEL',
    );
  }
  const size = TIMM_SIZES[m[1]!]!;
  const top = new ConfigReader(config, where);
  const argsObj = top.object('model_args');
  const merged: ConfigObject = {
    ...size,
    patch_size: Number(m[2]),
    img_size: m[3] ? Number(m[3]) : 224,
    ...(top.has('num_classes') ? { num_classes: config['num_classes'] } : {}),
    ...(top.has('global_pool') ? { global_pool: config['global_pool'] } : {}),
    ...(argsObj?.config ?? {}),
  };
  const c = new ConfigReader(merged, argsObj ? `${where}: model_args` : where);
  const globalPool = c.oneOf('global_pool', ['token', 'avg', 'max', 'avgmax'] as const, 'token');
  const fcNormConfig = merged['fc_norm'];
  const useFcNorm = fcNormConfig === undefined || fcNormConfig === null ? globalPool !== 'token' : Boolean(fcNormConfig);
  const finalNorm = c.bool('final_norm', true);
  if (c.int('reg_tokens', 0) !== 0) throw new ModelConfigError(`${where}: timm register tokens (reg_tokens) are not supported`, 'MEDTUNE_UNSUPPORTED_MODEL');
  if (c.bool('dynamic_img_size', false)) throw new ModelConfigError(`${where}: timm dynamic_img_size is not supported`, 'MEDTUNE_UNSUPPORTED_MODEL');
  const classToken = c.bool('class_token', true);
  if (!classToken && globalPool === 'token') throw new ModelConfigError(`${where}: global_pool 'token' needs class_token`);
  const dim = c.positiveInt('embed_dim');
  const imgSize = merged['img_size'];
  const patch = merged['patch_size'];
  return {
    family: 'vit',
    layout: 'timm',
    prefix: '',
    hiddenSize: dim,
    numLayers: c.positiveInt('depth'),
    numHeads: c.positiveInt('num_heads'),
    intermediateSize: Math.floor(dim * c.number('mlp_ratio', 4)),
    patchSize: Array.isArray(patch) ? Number(patch[0]) : c.positiveInt('patch_size'),
    imageSize: Array.isArray(imgSize) ? Number(imgSize[0]) : c.positiveInt('img_size'),
    numChannels: c.positiveInt('in_chans', 3),
    layerNormEps: 1e-6,
    hiddenAct: 'gelu',
    qkvBias: c.bool('qkv_bias', true),
    pooling: globalPool === 'token' ? 'cls' : globalPool,
    finalNorm: !finalNorm ? 'none' : useFcNorm ? 'fc_norm' : 'norm',
    classToken,
    noEmbedClass: c.bool('no_embed_class', false),
    layerScale: merged['init_values'] !== undefined && merged['init_values'] !== null && merged['init_values'] !== 0,
    preNorm: c.bool('pre_norm', false),
    hfPooler: false,
    poolerAct: 'tanh',
    poolerOutputSize: dim,
    numLabels: c.int('num_classes', 1000),
    problemType: problemType(top),
    hiddenDropout: c.number('proj_drop_rate', 0),
    attentionDropout: c.number('attn_drop_rate', 0),
    dropPath: c.number('drop_path_rate', 0),
    headDropout: c.number('drop_rate', 0),
  };
}
