// LLaMA and Mistral decoders (model_type 'llama' / 'mistral', and the text side of LLaVA configs):
// transformers' defaults for absent fields, RoPE parameters in both spellings (5.x
// "rope_parameters", 4.x "rope_theta" + "rope_scaling").
import type { CheckpointKeys } from '../checkpoint.ts';
import { type ConfigObject, ConfigReader, ModelConfigError } from '../config.ts';

export interface RopeSpec {
  type: 'default' | 'linear' | 'dynamic' | 'llama3' | 'yarn';
  theta: number;
  factor?: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
  attentionFactor?: number;
  betaFast?: number;
  betaSlow?: number;
  mscale?: number;
  mscaleAllDim?: number;
  truncate?: boolean;
}

export interface LlamaSpec {
  family: 'llama';
  modelType: 'llama' | 'mistral';
  /** Where the decoder's keys live: 'model' (LlamaForCausalLM), 'language_model.model' (llava-hf) ... */
  decoderPrefix: string;
  /** The lm_head's path ('lm_head', 'language_model.lm_head'). */
  lmHead: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  intermediateSize: number;
  rmsNormEps: number;
  hiddenAct: string;
  maxPositionEmbeddings: number;
  attentionBias: boolean;
  mlpBias: boolean;
  tieWordEmbeddings: boolean;
  /** Mistral's sliding window (0: none). */
  slidingWindow: number;
  attentionDropout: number;
  rope: RopeSpec;
  /** Generation defaults from the config. */
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
}

// transformers' LlamaConfig / MistralConfig defaults.
const DEFAULTS = {
  llama: { vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, max_position_embeddings: 2048, sliding_window: null },
  mistral: { vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, max_position_embeddings: 4096 * 32, sliding_window: 4096 },
} as const;

function ropeSpec(c: ConfigReader, maxPositions: number): RopeSpec {
  const params = c.object('rope_parameters') ?? c.object('rope_scaling');
  const theta = params?.has('rope_theta') ? params.number('rope_theta') : c.number('rope_theta', 10000);
  if (!params) return { type: 'default', theta };
  const type = (params.has('rope_type') ? params.string('rope_type') : params.string('type', 'default')) as RopeSpec['type'];
  const supported: RopeSpec['type'][] = ['default', 'linear', 'dynamic', 'llama3', 'yarn'];
  if (!supported.includes(type)) {
    throw new ModelConfigError(`${params.where}: rope type '${type}' is not supported (supported: ${supported.join(', ')})`, 'MEDTUNE_UNSUPPORTED_MODEL');
  }
  const prf = params.has('partial_rotary_factor') ? params.number('partial_rotary_factor') : c.number('partial_rotary_factor', 1);
  if (prf !== 1) throw new ModelConfigError(`${c.where}: partial_rotary_factor ${prf} is not supported`, 'MEDTUNE_UNSUPPORTED_MODEL');
  const spec: RopeSpec = { type, theta };
  if (type === 'default') return spec;
  spec.factor = params.number('factor');
  if (type === 'llama3') {
    spec.lowFreqFactor = params.number('low_freq_factor');
    spec.highFreqFactor = params.number('high_freq_factor');
  }
  if (type === 'llama3' || type === 'yarn') {
    spec.originalMaxPositionEmbeddings = params.int('original_max_position_embeddings', c.int('original_max_position_embeddings', maxPositions));
  }
  if (type === 'yarn') {
    if (params.has('attention_factor')) spec.attentionFactor = params.number('attention_factor');
    spec.betaFast = params.number('beta_fast', 32);
    spec.betaSlow = params.number('beta_slow', 1);
    if (params.has('mscale')) spec.mscale = params.number('mscale');
    if (params.has('mscale_all_dim')) spec.mscaleAllDim = params.number('mscale_all_dim');
    spec.truncate = params.bool('truncate', true);
  }
  return spec;
}

function tokenIds(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number');
  return [];
}

/**
 * A LLaMA / Mistral spec. `prefixes` place the decoder and head (defaults: LlamaForCausalLM's
 * 'model' and 'lm_head'); `tieFallback` is the enclosing config's tie_word_embeddings (LLaVA).
 */
export function llamaSpec(config: ConfigObject, where: string, prefixes: { decoderPrefix?: string; lmHead?: string } = {}, tieFallback = false): LlamaSpec {
  const c = new ConfigReader(config, where);
  const modelType = c.oneOf('model_type', ['llama', 'mistral'] as const, 'llama');
  const d = DEFAULTS[modelType];
  const hidden = c.positiveInt('hidden_size', d.hidden_size);
  const heads = c.positiveInt('num_attention_heads', d.num_attention_heads);
  const kvHeads = c.positiveInt('num_key_value_heads', modelType === 'mistral' ? 8 : heads);
  if (heads % kvHeads !== 0) throw new ModelConfigError(`${where}: num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${kvHeads})`);
  const maxPositions = c.positiveInt('max_position_embeddings', d.max_position_embeddings);
  const sliding = config['sliding_window'] === undefined ? d.sliding_window : config['sliding_window'];
  if (sliding !== null && (typeof sliding !== 'number' || !Number.isInteger(sliding) || sliding <= 0)) {
    throw new ModelConfigError(`${where}: "sliding_window" must be a positive integer or null, got ${JSON.stringify(sliding)}`);
  }
  const pad = config['pad_token_id'];
  return {
    family: 'llama',
    modelType,
    decoderPrefix: prefixes.decoderPrefix ?? 'model',
    lmHead: prefixes.lmHead ?? 'lm_head',
    vocabSize: c.positiveInt('vocab_size', d.vocab_size),
    hiddenSize: hidden,
    numLayers: c.positiveInt('num_hidden_layers', d.num_hidden_layers),
    numHeads: heads,
    numKeyValueHeads: kvHeads,
    headDim: c.positiveInt('head_dim', Math.floor(hidden / heads)),
    intermediateSize: c.positiveInt('intermediate_size', d.intermediate_size),
    rmsNormEps: c.number('rms_norm_eps', 1e-6),
    hiddenAct: c.string('hidden_act', 'silu'),
    maxPositionEmbeddings: maxPositions,
    attentionBias: c.bool('attention_bias', false),
    mlpBias: c.bool('mlp_bias', false),
    tieWordEmbeddings: c.bool('tie_word_embeddings', tieFallback),
    slidingWindow: sliding ?? 0,
    attentionDropout: c.number('attention_dropout', 0),
    rope: ropeSpec(c, maxPositions),
    bosTokenId: typeof config['bos_token_id'] === 'number' ? config['bos_token_id'] : null,
    eosTokenIds: tokenIds(config['eos_token_id']),
    padTokenId: typeof pad === 'number' ? pad : null,
  };
}

export const CAUSAL_LM_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM'] as const;

/** LlamaForCausalLM / MistralForCausalLM checkpoints ('model.*', 'lm_head'). */
export function causalLmSpec(config: ConfigObject, where: string, keys: CheckpointKeys | null): LlamaSpec {
  const archs = (config['architectures'] as string[] | undefined) ?? [];
  if (archs.length && !archs.some((a) => (CAUSAL_LM_ARCHITECTURES as readonly string[]).includes(a))) {
    throw new ModelConfigError(`${where}: architecture ${archs.join(', ')} is not supported (supported: ${CAUSAL_LM_ARCHITECTURES.join(', ')})`, 'MEDTUNE_UNSUPPORTED_MODEL');
  }
  const spec = llamaSpec(config, where);
  // Some checkpoints store a tied head anyway; some untied configs lack it (then it is an error).
  if (keys && !spec.tieWordEmbeddings && !keys.has('lm_head.weight') && keys.has('model.embed_tokens.weight')) {
    throw new ModelConfigError(`${where}: tie_word_embeddings is false but the checkpoint has no lm_head.weight`);
  }
  return spec;
}
